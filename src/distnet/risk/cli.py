"""``distnet risk scan``: every detector over the whole network, by hand, with a progress bar."""

from __future__ import annotations

import json
from typing import Annotated

import msgspec
import typer

risk_app = typer.Typer(help="risk: detectors, holds, appeals", no_args_is_help=True)


@risk_app.command("scan")
def scan_command(
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="only this rule (repeat for several)")
    ] = None,
) -> None:
    """Run the detectors now (modes as configured) and print the scan's summary as JSON."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from distnet.kit.auth import Principal
    from distnet.kit.runner import run_in_session
    from distnet.risk.rules import RULES
    from distnet.risk.scan import run_scan

    unknown = [r for r in rule or [] if r not in RULES]
    if unknown:
        raise typer.BadParameter(f"unknown rule(s): {', '.join(unknown)}; rules: {', '.join(RULES)}")

    async def main(session, settings):
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("risk scan", total=None)

            def progress(name: str, done: int, total: int) -> None:
                bar.update(task, description=f"risk scan: {name}", completed=done, total=total)

            return await run_scan(session, Principal(None, "cli"), only=rule or None, progress=progress)

    result = run_in_session(main)
    typer.echo(json.dumps(msgspec.to_builtins(result)))


def register(app: typer.Typer) -> None:
    app.add_typer(risk_app, name="risk")
