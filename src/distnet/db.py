"""Engine and session factory. Services take an ``AsyncSession`` and never commit; owners do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from distnet.settings import Settings


def normalize_url(url: str) -> str:
    """Accept ``postgres://`` / ``postgresql://`` URLs and use the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in ("postgresql", "postgresql+psycopg2", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def resolve_database_url(settings: Settings) -> str:
    if settings.database.url:
        return normalize_url(settings.database.url)
    from distnet.kit.embedded import ensure_postgres

    return normalize_url(ensure_postgres(settings.data_dir))


def resolve_redis_url(settings: Settings) -> str:
    if settings.redis.url:
        return settings.redis.url
    from distnet.kit.embedded import ensure_redis

    return ensure_redis(settings.data_dir)


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """No ping before each checkout: it was a round trip per request (per order). A connection
    the server dropped fails its first statement instead; SQLAlchemy (or ``kit.pg``) then
    discards it and the other pooled ones, and the API answers 503 with Retry-After
    (kit/problems.py), so the client's retry gets a fresh one."""
    return create_async_engine(normalize_url(url), pool_size=pool_size, max_overflow=pool_size * 2)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Owner of a unit of work (CLI command, actor): commit on success, roll back on error."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
