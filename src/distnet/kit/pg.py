"""The hot path's direct line to PostgreSQL: one of our statements (a ``TextClause``) run on the
session's own psycopg connection, inside the session's transaction.

An order's few statements went through ``AsyncSession.execute``: ORM bookkeeping, a compiled-cache
lookup, the greenlet bridge and a result proxy (BENCHMARKS.md). Here the statement is compiled
once and sent by psycopg itself; the rows come back as named tuples. The session still owns
the transaction: it began it, and it commits or rolls it back."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import TextClause, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as numeric_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# compiled with PostgreSQL's own $n placeholders (the dialect of asyncpg, for the text only):
# psycopg's raw cursor sends them as they are, where its default cursor re-parses the %(name)s
# placeholders of a statement over 4,096 characters (an order's is 5,300) on every execution
_DIALECT = numeric_dialect()


@functools.lru_cache(maxsize=256)
def _sql(clause: TextClause) -> tuple[str, tuple[str, ...], dict[str, Callable[[], Any]]]:
    """The statement with $n placeholders, the parameter name of each n, and the parameters
    valued at execution when not given (``bindparam(callable_=...)``: kit/outbox.REQUEST_ID)."""
    compiled = clause.compile(dialect=_DIALECT)
    defaults = {name: bind.callable for name, bind in compiled.binds.items() if bind.callable is not None}
    return str(compiled), tuple(compiled.positiontup or ()), defaults


# The session's connection for its current transaction: asking the session on every statement
# went through SQLAlchemy's greenlet bridge each time (a request runs up to five of them). Keyed by
# the session, valid while the session's root transaction is the same object.
_connections: weakref.WeakKeyDictionary[
    AsyncSession, tuple[Any, AsyncConnection, psycopg.AsyncConnection[Any]]
] = weakref.WeakKeyDictionary()


async def _connection_of(session: AsyncSession) -> tuple[AsyncConnection, psycopg.AsyncConnection[Any]]:
    transaction = session.sync_session.get_transaction()
    known = _connections.get(session)
    if transaction is not None and known is not None and known[0] is transaction:
        return known[1], known[2]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    _connections[session] = (session.sync_session.get_transaction(), connection, driver)
    return connection, driver


async def fetch(session: AsyncSession, clause: TextClause, params: Mapping[str, Any]) -> list[Any]:
    """Run ``clause`` in the session's transaction; its rows as named tuples (``row.id``, or by
    position), none for a statement that returns nothing. Errors are raised as SQLAlchemy's, as
    ``session.execute`` would. When the connection broke, it and the pooled ones are discarded,
    so the next request connects afresh."""
    connection, driver = await _connection_of(session)
    sql, names, defaults = _sql(clause)
    try:
        async with psycopg.AsyncRawCursor(driver, row_factory=namedtuple_row) as cursor:
            await cursor.execute(sql, [params[n] if n in params else defaults[n]() for n in names])
            return [] if cursor.description is None else await cursor.fetchall()
    except psycopg.Error as exc:
        if driver.broken:  # the server dropped it: so it did the pooled ones, most likely
            await connection.invalidate(exc)
            await connection.engine.dispose()  # as SQLAlchemy does on a disconnect: a fresh pool
        raise DBAPIError.instance(sql, dict(params), exc, psycopg.Error) from exc


@functools.lru_cache(maxsize=8)
def bulk_settings(work_mem: str) -> TextClause:
    """For the rest of the transaction: ``work_mem`` for a bulk statement's sorts and hashes, and
    plans made for each execution's own values (``plan_cache_mode = force_custom_plan``).

    Statements are server-side prepared from their second run on a connection (``db.make_engine``),
    and PostgreSQL switches a prepared statement to its generic plan after five runs when that
    plan looks no dearer. A generic plan cannot know how many elements an array parameter holds
    (it guesses ten): the settlement partition statement's generic plan joined 27k beneficiaries
    to 55k accounts in a nested loop, and from about the sixth partition on a connection a
    partition took 65-71 s instead of 11-13 s (L, BENCHMARKS.md). A bulk statement runs for
    seconds; planning it costs milliseconds."""
    return text(
        "SELECT set_config('work_mem', :work_mem, true), "
        "set_config('plan_cache_mode', 'force_custom_plan', true)"
    ).bindparams(work_mem=work_mem)


NO_NESTED_LOOPS = text("SET LOCAL enable_nestloop = off")
"""Hash (or merge) joins only, until :data:`NESTED_LOOPS_AGAIN`: for a bulk statement whose row
estimates are known to be wrong (a table just rewritten and not analysed yet, a union of levels
judged at a few rows), where a nested loop chosen on the estimate compares every row with every
other (payouts.service.create_run, commissions.repository.attribute_in_chunks)."""
NESTED_LOOPS_AGAIN = text("RESET enable_nestloop")
