"""Command-line commands of this domain, added to ``distnet`` by ``distnet.cli``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    orders_app = typer.Typer(help="orders", no_args_is_help=True)
    app.add_typer(orders_app, name="orders")

    @orders_app.command("import")
    def import_command(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with a header row")],
        source: Annotated[str, typer.Option(help="source for rows without one")] = "import",
        attribute: Annotated[bool, typer.Option(help="attribute commissions to the imported orders")] = True,
        execute: Annotated[bool, typer.Option("--execute", help="commit; without it the import is a dry run")]
        = False,
    ) -> None:
        """Import orders from CSV with COPY (idempotent by source and external_id)."""
        from rich.console import Console

        from distnet.kit.money import format_amount
        from distnet.kit.runner import run_in_session
        from distnet.orders.importer import import_csv

        console = Console()
        with file.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])

        def chunks():
            with file.open("rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        async def run(session, settings):
            with console.status(f"importing {file.name}"):
                result = await import_csv(session, settings, chunks(), header=header, source=source,
                                          attribute=attribute)
            if not execute:
                await session.rollback()
            return result

        result = run_in_session(run)
        for line in result["error_lines"]:
            console.print(f"[red]line {line['line']}[/red] {line['external_id']}: {line['error']}")
        console.print(f"created {result['created']}, replayed {result['replayed']}, conflicts {result['conflicts']}, "
                      f"errors {result['errors']}, commissions {result['commissions']} "
                      f"({format_amount(result['commission_amount'])})")
        console.print("committed" if execute else "dry run: nothing was written (add --execute)")
        if result["conflicts"] or result["errors"]:
            raise typer.Exit(1)
