"""Running async service code from synchronous entry points (CLI commands, scripts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.db import make_engine, make_sessionmaker, resolve_database_url, session_scope
from distnet.kit.errors import DistnetError
from distnet.settings import Settings, get_settings

T = TypeVar("T")


def run_with_sessionmaker(
    fn: Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[T]],
    *,
    settings: Settings | None = None,
    pool_size: int = 2,
) -> T:
    """Open an engine, run ``fn`` with a sessionmaker (it owns its units of work), dispose."""
    settings = settings or get_settings()

    async def main() -> T:
        engine = make_engine(
            resolve_database_url(settings), pool_size=pool_size, time_zone=settings.business.time_zone
        )
        try:
            return await fn(make_sessionmaker(engine), settings)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def run_in_session(
    fn: Callable[[AsyncSession, Settings], Awaitable[T]], settings: Settings | None = None
) -> T:
    """Open an engine, run ``fn`` in one unit of work (commit on success), dispose."""

    async def in_session(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> T:
        async with session_scope(sessionmaker) as session:
            return await fn(session, settings)

    return run_with_sessionmaker(in_session, settings=settings)


def run_command(fn: Callable[[AsyncSession, Settings], Awaitable[T]], settings: Settings | None = None) -> T:
    """:func:`run_in_session` for a CLI command: a business rejection (``DistnetError``) is one
    line on stderr and exit code 1, not a traceback."""
    try:
        return run_in_session(fn, settings)
    except DistnetError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
