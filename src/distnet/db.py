"""Engine and session factory. Services take an ``AsyncSession`` and never commit; owners do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from distnet.kit.embedded import ensure_postgres, ensure_redis
from distnet.kit.replicas import Replica, ReplicaSet
from distnet.migrate import upgrade_if_behind
from distnet.settings import BusinessSettings, Settings, normalize_url, read_section

__all__ = [
    "rowcount",
    "normalize_url",
    "resolve_database_url",
    "resolve_redis_url",
    "make_engine",
    "make_sessionmaker",
    "session_scope",
]


def rowcount(result: Result[Any]) -> int:
    """Rows an INSERT/UPDATE/DELETE touched (``AsyncSession.execute`` is typed as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount


def resolve_database_url(settings: Settings) -> str:
    """The configured database, or in local mode the embedded one of the data directory, started
    if needed and migrated to the newest revision under the same lock: whichever process needs it
    first (``serve``, ``keys create``, a worker) starts and migrates it, and the others wait."""
    if settings.database.url:
        return normalize_url(settings.database.url)
    return normalize_url(ensure_postgres(settings.data_dir, ready=upgrade_if_behind))


def resolve_redis_url(settings: Settings) -> str:
    if settings.redis.url:
        return settings.redis.url
    return ensure_redis(settings.data_dir)


PREPARE_THRESHOLD = 1
"""Executions of a statement on a connection before psycopg prepares it (0 would prepare one-off
statements too)."""
PREPARED_MAX = 512
"""Prepared statements kept per connection (psycopg's default 100 is fewer than the API's hot set)."""


def make_engine(
    url: str, *, pool_size: int = 10, time_zone: str | None = None, generic_plans: bool = False
) -> AsyncEngine:
    """No ping before each checkout: it was a round trip per request (per order). A connection
    the server dropped fails its first statement instead; SQLAlchemy (or ``kit.pg``) then
    discards it and the other pooled ones, and the API answers 503 with Retry-After
    (kit/problems.py), so the client's retry gets a fresh one. ``generic_plans``: every prepared
    statement on these connections uses its generic plan (``plan_cache_mode``), for the single
    order's few statements whose planning cost more than their run (kit/unit_of_work
    ``ONE_STATEMENT``)."""
    zone = time_zone or read_section(BusinessSettings).time_zone
    # the business calendar's zone for SQL (distnet_local_day): every connection carries it.
    # Statements are server-side prepared from their second run on a connection (psycopg's
    # default is the sixth): a request's few statements were parsed and planned anew on most
    # of the pool's connections (issue 19). A pooler in transaction mode (PgBouncer < 1.21)
    # would need prepare_threshold None.
    engine = create_async_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        connect_args={
            "options": f"-c distnet.time_zone={zone}"
            + (" -c plan_cache_mode=force_generic_plan" if generic_plans else ""),
            "prepare_threshold": PREPARE_THRESHOLD,
        },
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _more_prepared(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.prepared_max = PREPARED_MAX

    return engine


def replica_set(settings: Settings) -> ReplicaSet | None:
    """Engines of ``DISTNET_DATABASE_REPLICA_URLS`` (connections are opened on first use), or None."""
    if not settings.database.replica_urls:
        return None
    replicas = []
    for url in settings.database.replica_urls:
        engine = make_engine(
            url, pool_size=settings.database.pool_size, time_zone=settings.business.time_zone
        )
        replicas.append(Replica(url, engine, make_sessionmaker(engine)))
    return ReplicaSet(replicas, settings.database.replica_max_lag)


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
