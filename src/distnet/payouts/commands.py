"""``distnet payouts``: filled below."""

from __future__ import annotations

import typer

payouts_app = typer.Typer(help="payout runs: export bank files, import bank results", no_args_is_help=True)
