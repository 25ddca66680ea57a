"""A request's unit of work retried whole when PostgreSQL aborts it for a deadlock or a
serialization failure (SQLSTATE class 40: nothing of the aborted transaction was kept).

Defence in depth behind the one lock order (ARCHITECTURE.md, "Lock order"). Such a failure
usually surfaces at COMMIT, in the request session's cleanup, after the handler returned: retrying
a statement is not possible, so this middleware re-runs the whole request (guard, handler, commit)
with the same body, a bounded number of times, before the client gets the 503. It buffers only
until the response starts: the exception handler (kit/problems) marks the attempt retryable when
it turns such an error into its 503, and a marked 503 is dropped instead of sent."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, cast

import psycopg
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import CONNECTION_STATE_KEY, ScopeState

log = logging.getLogger(__name__)

ATTEMPTS = 4
"""Attempts per request (the first and three retries)."""
BACKOFF_SECONDS = (0.005, 0.02, 0.05)
"""Base wait before each retry (jittered up to twice as long), so the winner of the conflict commits first."""
SCOPE_KEY = "distnet.retry"
MAX_REPLAY_BYTES = 8 * 1024 * 1024
"""Bodies up to this size (the app's request limit) are kept for a replay; a larger one is passed
through once, without retries, rather than buffered."""


def is_retryable(exc: BaseException | None) -> bool:
    """PostgreSQL aborted the transaction: SQLSTATE class 40 (40P01 deadlock detected, 40001
    serialization failure; psycopg's DeadlockDetected is not a TransactionRollback subclass)."""
    return isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith("40")


def mark_retryable(scope: Scope) -> bool:
    """Called by the exception handler that renders the 503; True when the attempt will be retried."""
    marker: dict[str, Any] | None = cast(dict[str, Any], scope).get(SCOPE_KEY)
    if marker is None or marker["attempt"] >= ATTEMPTS:
        return False
    marker["retryable"] = True
    return True


def _copy_state(state: ScopeState) -> ScopeState:
    """A shallow copy, as ``copy.copy`` makes it: attribute by attribute (``copy.copy`` of this
    slotted class went through ``__reduce_ex__``, 4-5% of a ``/health`` request's CPU)."""
    fresh = ScopeState.__new__(ScopeState)
    for name in ScopeState.__slots__:
        setattr(fresh, name, getattr(state, name))
    return fresh


def _fresh_scope(scope: Scope, state: dict[str, Any], connection: ScopeState, attempt: int) -> Scope:
    # Litestar caches per-request state (parsed body, dependency cache, "response started") in
    # scope["state"]: each attempt starts from a copy of the state as it was before the first one
    fresh: dict[str, Any] = {**scope, "state": {**state, CONNECTION_STATE_KEY: _copy_state(connection)}}
    fresh[SCOPE_KEY] = {"attempt": attempt, "retryable": False}
    return fresh  # type: ignore[return-value]


def retry_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body: list[Any] = []  # the request's receive messages
        size, attempts = 0, ATTEMPTS
        while True:  # the request body, kept to be replayed on a retry
            message: Any = await receive()
            body.append(message)
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
            if size > MAX_REPLAY_BYTES:  # the rest streams from the client; no retry
                attempts = 1
                break
        connection = _copy_state(ScopeState.from_scope(scope))
        state = dict(scope.get("state", {}))
        for attempt in range(ATTEMPTS - attempts + 1, ATTEMPTS + 1):
            attempt_scope = _fresh_scope(scope, state, connection, attempt)
            replay = iter(body)

            async def replay_receive(_replay=replay) -> Any:
                try:
                    return next(_replay)
                except StopIteration:
                    return await receive()  # after the body: the client's disconnect, as usual

            dropped = False

            async def guarded_send(message: Message, _scope=attempt_scope) -> None:
                nonlocal dropped
                if _scope[SCOPE_KEY]["retryable"]:  # type: ignore[index]
                    dropped = True  # the marked 503 (start and body) is not sent: we retry
                    return
                await send(message)

            await app(attempt_scope, replay_receive, guarded_send)
            if not dropped:
                return
            log.info(
                "retrying %s %s after a deadlock or serialization failure (attempt %d)",
                scope.get("method"),
                scope["path"],
                attempt + 1,
            )
            base = BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)]
            await asyncio.sleep(base * (1 + random.random()))

    return middleware
