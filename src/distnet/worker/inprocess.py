"""Local mode: a dramatiq worker and the scheduler inside the API process (filled by the worker domain)."""

from __future__ import annotations

from litestar import Litestar

from distnet.settings import Settings


def attach_background(app: Litestar, settings: Settings) -> None:
    """Start the in-process worker and scheduler with the app, stop them with it."""
