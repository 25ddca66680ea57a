"""Running async service code from synchronous entry points (CLI commands, scripts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.db import make_engine, make_sessionmaker, resolve_database_url, session_scope
from distnet.settings import Settings, get_settings

T = TypeVar("T")


def run_with_sessionmaker(fn: Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[T]], *,
                          settings: Settings | None = None, pool_size: int = 2) -> T:
    """Open an engine, run ``fn`` with a sessionmaker (it owns its units of work), dispose."""
    settings = settings or get_settings()

    async def main() -> T:
        engine = make_engine(resolve_database_url(settings), pool_size=pool_size)
        try:
            return await fn(make_sessionmaker(engine), settings)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def run_in_session(fn: Callable[[AsyncSession, Settings], Awaitable[T]], settings: Settings | None = None) -> T:
    """Open an engine, run ``fn`` in one unit of work (commit on success), dispose."""

    async def in_session(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> T:
        async with session_scope(sessionmaker) as session:
            return await fn(session, settings)

    return run_with_sessionmaker(in_session, settings=settings)
