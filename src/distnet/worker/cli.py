"""Command-line commands of this domain, added to ``distnet`` by ``distnet.cli``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this domain's commands to the main CLI (filled by the domain)."""
