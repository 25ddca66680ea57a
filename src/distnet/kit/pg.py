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
from sqlalchemy import TextClause, event, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as numeric_dialect
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

# compiled with PostgreSQL's own $n placeholders (the dialect of asyncpg, for the text only):
# psycopg's raw cursor sends them as they are, where its default cursor re-parses the %(name)s
# placeholders of a statement over 4,096 characters (an order's is 5,300) on every execution
_DIALECT = numeric_dialect()


@functools.lru_cache(maxsize=256)
def _sql(clause: TextClause) -> tuple[bytes, tuple[str, ...], dict[str, Callable[[], Any]]]:
    """The statement with $n placeholders (as bytes: psycopg encoded the 6 kB of an order's
    statement on every run, and hashed the new bytes to find its prepared statement), the
    parameter name of each n, and the parameters valued at execution when not given
    (``bindparam(callable_=...)``: kit/outbox.REQUEST_ID)."""
    compiled = clause.compile(dialect=_DIALECT)
    defaults = {name: bind.callable for name, bind in compiled.binds.items() if bind.callable is not None}
    return str(compiled).encode(), tuple(compiled.positiontup or ()), defaults


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
            for other in _sharing(connection.engine.sync_engine):
                await other.dispose(close=False)
        raise DBAPIError.instance(sql.decode(), dict(params), exc, psycopg.Error) from exc


# Engines of one process on the same server (the app's two pools, kit/unit_of_work): a connection
# found dead on one renews the others' pools too. After a server restart every pooled connection
# of each is dead, and a pool nobody renewed answered its first request long after the server was
# back with a 503 (tests/test_outages.py).
_outage_groups: weakref.WeakKeyDictionary[Any, list[weakref.ref[AsyncEngine]]] = weakref.WeakKeyDictionary()


def share_outages(*engines: AsyncEngine) -> None:
    """Renew all of ``engines``' pools when any of them meets a dropped connection, here or in
    SQLAlchemy's own statements."""
    for engine in engines:
        others = [weakref.ref(o) for o in engines if o is not engine]
        _outage_groups[engine.sync_engine] = others

        def renew_others(context: ExceptionContext, _others: list[weakref.ref[AsyncEngine]] = others) -> None:
            if context.is_disconnect:
                for ref in _others:
                    other = ref()
                    if other is not None:
                        other.sync_engine.dispose(close=False)

        event.listen(engine.sync_engine, "handle_error", renew_others)


def _sharing(sync_engine: Any) -> list[AsyncEngine]:
    base = getattr(sync_engine, "_proxied", sync_engine)  # an engine with execution options
    return [o for ref in _outage_groups.get(base, []) if (o := ref()) is not None]


def int_array(values: list[int]) -> str:
    """Integers as PostgreSQL's array literal, for ``CAST(:ids AS bigint[])``: psycopg dumps a
    list element by element in Python (0.55 ms for a batch's 1,000 order ids, sent to five
    statements), the literal in 0.09 ms."""
    return "{" + ",".join(map(str, values)) + "}"


def text_array(values: list[str]) -> str:
    """Strings as PostgreSQL's array literal, for ``CAST(:keys AS text[])``: each element quoted,
    its backslashes and double quotes escaped (so commas, braces, blanks and ``NULL`` stay text).
    A statement given a 1,000-string list cost the client 2.3 ms of CPU (psycopg dumps the list
    element by element in Python), given the literal 0.5 ms."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


async def begin(session: AsyncSession) -> None:
    """Open a transaction on a session that runs each statement in its own (kit/unit_of_work
    ``ONE_STATEMENT``): for a handler's rare path of several statements that stand or fall
    together. The unit of work commits it as usual (psycopg commits whatever the connection has
    open, autocommit or not) or rolls it back. A session whose connection opens transactions
    itself, or is in one already, is left as it is."""
    _, driver = await _connection_of(session)
    if driver.autocommit and driver.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        await driver.execute("BEGIN")


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
