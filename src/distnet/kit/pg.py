"""The hot path's direct line to PostgreSQL: one of our statements (a ``TextClause``) run on the
session's own psycopg connection, inside the session's transaction.

An order's few statements went through ``AsyncSession.execute``: ORM bookkeeping, a compiled-cache
lookup, the greenlet bridge and a result proxy, about a third of the server's CPU per order
(BENCHMARKS.md). Here the statement is compiled once to psycopg's placeholders and sent by
psycopg itself; the rows come back as tuples with their column names. The session still owns
the transaction: it began it, and it commits or rolls it back."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import TextClause
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

_DIALECT = psycopg_dialect()


@functools.cache
def _sql(clause: TextClause) -> str:
    """The statement with psycopg's ``%(name)s`` placeholders (literal ``%`` doubled)."""
    return str(clause.compile(dialect=_DIALECT))


async def fetch(session: AsyncSession, clause: TextClause, params: Mapping[str, Any]) -> list[Any]:
    """Run ``clause`` in the session's transaction; its rows as named tuples (``row.id``, or by
    position), none for a statement that returns nothing. Errors are raised as SQLAlchemy's, as
    ``session.execute`` would. When the connection broke, it and the pooled ones are discarded,
    so the next request connects afresh."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: psycopg.AsyncConnection = raw.driver_connection  # type: ignore[assignment]
    sql = _sql(clause)
    try:
        async with driver.cursor(row_factory=namedtuple_row) as cursor:
            await cursor.execute(sql, params)
            return [] if cursor.description is None else await cursor.fetchall()
    except psycopg.Error as exc:
        if driver.broken:  # the server dropped it: so it did the pooled ones, most likely
            await connection.invalidate(exc)
            await connection.engine.dispose()  # as SQLAlchemy does on a disconnect: a fresh pool
        raise DBAPIError.instance(sql, dict(params), exc, psycopg.Error) from exc
