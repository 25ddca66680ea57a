"""``distnet calendar load|show``: the working-day table of a year."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.calendar import service
from distnet.kit.errors import DistnetError
from distnet.kit.keys import SYSTEM
from distnet.kit.runner import run_command
from distnet.settings import Settings


def register(app: typer.Typer) -> None:
    calendar_app = typer.Typer(
        help="business calendar: public holidays and make-up working days (调休)", no_args_is_help=True
    )
    app.add_typer(calendar_app, name="calendar")

    @calendar_app.command("load")
    def load(
        file: Annotated[
            Path | None, typer.Argument(help="a year's table as JSON (see calendar/data/cn-2026.json)")
        ] = None,
        builtin: Annotated[
            int | None, typer.Option(help="load the shipped table of this year instead")
        ] = None,
    ) -> None:
        """Replace a year's holidays and make-up working days (audited)."""
        if (file is None) == (builtin is None):
            raise typer.BadParameter("give a FILE or --builtin YEAR")
        try:
            table = (
                service.builtin_year(builtin)
                if builtin is not None
                else service.parse_year(file.read_bytes())  # type: ignore[union-attr]
            )
        except DistnetError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(1) from exc

        async def store(session: AsyncSession, settings: Settings) -> int:
            return await service.load_year(session, principal=SYSTEM, table=table)

        typer.echo(f"{table.year}: {run_command(store)} days loaded ({table.source or 'no source given'})")

    @calendar_app.command("show")
    def show(year: int) -> None:
        """The year's days that differ from the Monday-Friday week."""

        async def read(session: AsyncSession, settings: Settings) -> list[service.CalendarDay]:
            return list(await service.year(session, year=year))

        days = run_command(read)
        if not days:
            typer.echo(f"{year}: no table loaded, Monday-Friday are the working days")
        for d in days:
            typer.echo(f"{d.day:%Y-%m-%d %a}  {'working' if d.working else 'day off'}  {d.name}")
