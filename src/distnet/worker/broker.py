"""The one dramatiq broker of distnet, set as dramatiq's global broker at import.

Domain ``tasks.py`` modules import this module first, then declare actors with plain
``@dramatiq.actor``::

    import dramatiq

    from distnet.db import session_scope
    from distnet.worker.broker import worker_sessionmaker


    @dramatiq.actor(actor_name="settlement.run_partition", max_retries=5)
    async def run_partition(partition: int) -> None:
        async with session_scope(worker_sessionmaker()) as session:
            ...

Actors are ``async def`` (the AsyncIO middleware runs them on one event loop per worker
process), take ids not objects, and are idempotent: messages are delivered at least once.

Which broker: a ``StubBroker`` when ``DISTNET_BROKER=stub`` or under pytest (unit tests drive it
with ``dramatiq.Worker``; see tests/worker/conftest.py), otherwise a ``RedisBroker`` on the resolved
Redis URL (local mode: the embedded Redis of the data dir). Building the broker opens no connection.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from distnet.db import make_engine, make_sessionmaker, resolve_database_url, resolve_redis_url
from distnet.kit.logs import REQUEST_ID_OPTION, request_id
from distnet.settings import BrokerSettings, Settings, get_settings, read_section

__all__ = [
    "NAMESPACE",
    "broker",
    "configure_worker_database",
    "dispose_worker_engines",
    "make_broker",
    "make_middleware",
    "redis_broker",
    "worker_sessionmaker",
]

NAMESPACE = read_section(BrokerSettings).namespace
"""Redis key prefix of the broker's queues."""

DEFAULT_TIME_LIMIT_MS = 10 * 60 * 1000
DEFAULT_MIN_BACKOFF_MS = 1_000
DEFAULT_MAX_BACKOFF_MS = 10 * 60 * 1000


def make_middleware() -> list[Middleware]:
    """The explicit middleware list (dramatiq's defaults, plus AsyncIO and CurrentMessage, and our
    RequestIds)."""
    return [
        RequestIds(),
        AgeLimit(),
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # Backoff defaults suit I/O retries (webhooks, a DB restart); actors override per actor.
        Retries(max_retries=20, min_backoff=DEFAULT_MIN_BACKOFF_MS, max_backoff=DEFAULT_MAX_BACKOFF_MS),
        CurrentMessage(),
        AsyncIO(),
        # After AsyncIO in the list, so its after_worker_shutdown runs while the loop still runs.
        WorkerEngines(),
    ]


class RequestIds(Middleware):
    """A request's id follows its jobs: a message enqueued while a request id is bound (in a
    request, or in a job that carries one) gets it as ``options["request_id"]`` unless it has one
    (the outbox relay sets the id its event was written with), and the worker binds it on its log
    lines while it processes the message (the coroutine of an async actor is started from the
    worker thread, so it inherits the binding)."""

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int) -> None:
        if REQUEST_ID_OPTION not in message.options and (rid := request_id()) is not None:
            message.options[REQUEST_ID_OPTION] = rid

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        rid = message.options.get(REQUEST_ID_OPTION)
        if isinstance(rid, str):
            structlog.contextvars.bind_contextvars(request_id=rid)
        else:
            structlog.contextvars.unbind_contextvars("request_id")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.unbind_contextvars("request_id")

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.unbind_contextvars("request_id")


class WorkerEngines(Middleware):
    """Dispose the worker's DB engine on its event loop when the worker stops."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is not None and loop_thread.loop.is_running():
            loop_thread.run_coroutine(dispose_worker_engines())


def _use_stub() -> bool:
    kind = read_section(BrokerSettings).kind
    if kind != "auto":
        return kind == "stub"
    return "pytest" in sys.modules


def redis_broker(url: str, *, namespace: str = NAMESPACE) -> dramatiq.Broker:
    """A RedisBroker on ``url`` with our middleware (also used by tests and the relay to target a
    specific Redis)."""
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(
        url=url,
        namespace=namespace,
        middleware=make_middleware(),
        # Fail fast when Redis is down: the relay must notice at once and leave events in the outbox.
        socket_connect_timeout=2,
        socket_timeout=10,
    )


def make_broker(settings: Settings | None = None, *, stub: bool | None = None) -> dramatiq.Broker:
    if stub if stub is not None else _use_stub():
        return StubBroker(middleware=make_middleware())
    return redis_broker(resolve_redis_url(settings or get_settings()))


broker: dramatiq.Broker = make_broker()
dramatiq.set_broker(broker)


# --------------------------------------------------------------------------- worker-side DB access

_database_url: str | None = None
# (pid, id(loop)) -> (loop, url, engine, sessionmaker). The loop itself is kept and compared: a new
# worker's loop can get the id of a dead one, and an engine whose connections belong to a dead
# loop hangs every actor that uses it.
_engines: dict[
    tuple[int, int], tuple[asyncio.AbstractEventLoop, str, AsyncEngine, async_sessionmaker[AsyncSession]]
] = {}
_engines_lock = threading.Lock()


def configure_worker_database(url: str | None) -> None:
    """Point worker-side sessions at ``url`` (tests, in-process mode); None = from settings."""
    global _database_url
    _database_url = url


def worker_sessionmaker() -> async_sessionmaker[AsyncSession]:
    """The sessionmaker of this process and event loop (call it from async code).

    psycopg async connections belong to the loop that opened them, so the engine is per
    (process, loop): one per dramatiq worker process (AsyncIO runs all actors on one loop), one
    for an in-process scheduler on the API loop. Actors use it as
    ``async with session_scope(worker_sessionmaker()) as session``.
    """
    loop = asyncio.get_running_loop()
    key = (os.getpid(), id(loop))
    with _engines_lock:
        found = _engines.get(key)
        if found is None or found[0] is not loop or (_database_url and found[1] != _database_url):
            settings = get_settings()
            url = _database_url or resolve_database_url(settings)
            engine = make_engine(url, pool_size=min(settings.database.pool_size, 5))
            found = (loop, url, engine, make_sessionmaker(engine))
            _engines[key] = found
    return found[3]


async def dispose_worker_engines() -> None:
    """Dispose the engines opened on the running loop (call before that loop ends)."""
    loop = asyncio.get_running_loop()
    key = (os.getpid(), id(loop))
    with _engines_lock:
        found = _engines.get(key)
        if found is not None and found[0] is loop:
            del _engines[key]
        else:
            found = None
    if found is not None:
        await found[2].dispose()
