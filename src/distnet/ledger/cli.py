"""Command-line commands of this domain, added to ``distnet`` by ``distnet.cli``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    ledger_app = typer.Typer(help="the double-entry ledger", no_args_is_help=True)
    app.add_typer(ledger_app, name="ledger")

    @ledger_app.command("verify")
    def verify_command() -> None:
        """Check every money invariant on the live database; exit 1 and name what is wrong if any fails."""
        from rich.console import Console
        from rich.progress import Progress

        from distnet.kit.runner import run_in_session
        from distnet.ledger.verify import CHECKS, verify

        console = Console()

        async def run(session, settings):
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("verifying the ledger", total=len(CHECKS))
                return await verify(session, progress=lambda check: progress.advance(task))

        report = run_in_session(run)
        for check in report.checks:
            mark = "[green]ok[/green]" if check.ok else "[red]FAILED[/red]"
            console.print(f"{mark}  {check.name}: {check.detail}")
            for example in check.examples:
                console.print(f"      {example}")
        console.print(
            "[green]ledger verified[/green]" if report.ok else "[red]ledger verification failed[/red]"
        )
        if not report.ok:
            raise typer.Exit(1)
