"""The request's one database session, shared by the guard's key lookup and the handler.

The key lookup used to open a session of its own: a pool checkout, BEGIN, one SELECT, COMMIT,
then the handler's own checkout and transaction (two transactions per request, issue 19). Now
whichever needs the database first (the guard resolving a key, or the ``session`` dependency)
opens the request's session and keeps it in the request's scope state; the ``session``
dependency owns it (commit on success, rollback otherwise) and :func:`close_sessions_middleware`
closes one that no handler took over (a refused key, a handler without a session, a request
rejected between the guard and the handler), so its connection always goes back to the pool."""

from __future__ import annotations

import hashlib
from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.replicas import ReplicaSet

SCOPE_KEY = "distnet.session"


REPLICA_KEY = "distnet.on_replica"

AUTOCOMMIT: dict[str, bool] = {"autocommit": True}
"""A handler's ``opt`` for a read answered by one statement (after the key lookup): its session
runs each statement in its own implicit transaction. BEGIN and COMMIT were two of such a request's
four round trips (issue 19); nothing it reads needs the key lookup's snapshot. Never for a handler
that writes."""


ONE_STATEMENT: dict[str, bool] = {"one_statement": True}
"""A handler's ``opt`` for a write whose common case is one statement that is whole on its own (the
single order: orders.repository.SINGLE): its session runs each statement in its own implicit
transaction, on connections whose statements use generic plans (db.make_engine). BEGIN and
COMMIT were two of a single order's four round trips, each about 90 µs of the server's CPU
(issue 19). A rarer path of several statements that must stand or fall together opens its
transaction itself (``kit.pg.begin``); the unit of work commits or rolls it back."""


async def request_session(connection: ASGIConnection[Any, Any, Any, Any]) -> AsyncSession:
    """The session of this request (of this attempt, under kit/retry), opened on first use: on a
    replica for a handler marked ``READ_ONLY`` when one is configured and close enough
    (kit/replicas), else on the primary."""
    state = connection.scope.setdefault("state", {})  # type: ignore[typeddict-item]
    session: AsyncSession | None = state.get(SCOPE_KEY)
    if session is None:
        replicas: ReplicaSet | None = getattr(connection.app.state, "replicas", None)
        if (
            replicas is not None
            and connection.route_handler.opt.get("read_only")
            and not replicas.recently_wrote(writer(connection))
        ):
            session = await replicas.session()
            state[REPLICA_KEY] = session is not None
        if session is None:
            opt = connection.route_handler.opt
            app_state = connection.app.state
            if opt.get("one_statement"):
                session = app_state.one_statement_sessionmaker()
            elif opt.get("autocommit"):
                session = app_state.autocommit_sessionmaker()
            else:
                session = app_state.sessionmaker()
        state[SCOPE_KEY] = session
    return session


def on_replica(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return bool(connection.scope.get("state", {}).get(REPLICA_KEY))


def writer(connection: ASGIConnection[Any, Any, Any, Any]) -> bytes | None:
    """Who is asking, for read-after-write: the digest of the request's key (known before the
    key is looked up)."""
    header = connection.headers.get("authorization")
    return hashlib.sha256(header.encode()).digest() if header else None


def committed(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """The request's unit of work committed: a writing request's key reads from the primary for
    the replicas' lag bound."""
    replicas: ReplicaSet | None = getattr(connection.app.state, "replicas", None)
    if (
        replicas is not None
        and not on_replica(connection)
        and connection.scope.get("method") not in ("GET", "HEAD")
    ):
        replicas.wrote(writer(connection))


def close_sessions_middleware(app: ASGIApp) -> ASGIApp:
    """Innermost middleware (inside kit/retry, so it sees each attempt's scope)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        finally:
            session: AsyncSession | None = scope.get("state", {}).pop(SCOPE_KEY, None)  # type: ignore[attr-defined]
            if session is not None:
                await session.close()  # a no-op for the one the dependency already closed

    return middleware
