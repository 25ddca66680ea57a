"""Command-line commands of settlement and payouts, added to ``distnet`` by ``distnet.cli``:
``distnet settle`` and ``distnet payouts ...``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from distnet.payouts.commands import payouts_app
    from distnet.settlement.cli import settle_command

    app.command("settle")(settle_command)
    app.add_typer(payouts_app, name="payouts")
