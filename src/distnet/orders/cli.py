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
        file: Annotated[
            Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV with a header row")
        ],
        source: Annotated[str, typer.Option(help="source for rows without one")] = "import",
        attribute: Annotated[bool, typer.Option(help="attribute commissions to the imported orders")] = True,
        execute: Annotated[
            bool, typer.Option("--execute", help="commit; without it the import is a dry run")
        ] = False,
        parts: Annotated[
            int | None,
            typer.Option(
                min=1,
                max=16,
                help="connections importing at once, each a share of the keys in its own transaction "
                "(default: 2, or 1 for files under 1 MB)",
            ),
        ] = None,
    ) -> None:
        """Import orders from CSV with COPY (idempotent by source and external_id)."""
        from rich.console import Console

        from distnet.kit.money import format_amount
        from distnet.kit.runner import run_with_sessionmaker
        from distnet.orders.importer import ImportPartlyCommitted, import_csv_parts

        console = Console()
        with file.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        parts = parts or (2 if file.stat().st_size >= 1 << 20 else 1)

        def chunks():
            with file.open("rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        async def run(sessionmaker, settings):
            with console.status(f"importing {file.name}" + (f" on {parts} connections" if parts > 1 else "")):
                return await import_csv_parts(
                    sessionmaker,
                    settings,
                    chunks(),
                    header=header,
                    source=source,
                    attribute=attribute,
                    commit=execute,
                    parts=parts,
                )

        try:
            result = run_with_sessionmaker(run, pool_size=parts)
        except ImportPartlyCommitted as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        for line in result["error_lines"]:
            console.print(f"[red]line {line['line']}[/red] {line['external_id']}: {line['error']}")
        console.print(
            f"created {result['created']}, replayed {result['replayed']}, conflicts {result['conflicts']}, "
            f"errors {result['errors']}, commissions {result['commissions']} "
            f"({format_amount(result['commission_amount'])})"
        )
        console.print("committed" if execute else "dry run: nothing was written (add --execute)")
        if result["conflicts"] or result["errors"]:
            raise typer.Exit(1)
