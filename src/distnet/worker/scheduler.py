"""The scheduler: fires the periodic jobs of worker/jobs.py, on one leader at a time.

Leadership is a PostgreSQL session-level advisory lock held on a dedicated connection. Any number
of schedulers may run (one per machine, for availability); only the one holding the lock runs
APScheduler. The others retry the lock every ``retry_interval`` seconds. When the leader dies its
connection closes, PostgreSQL releases the lock, and a waiting scheduler takes over. The leader
checks its lock connection every ``heartbeat`` seconds and stops firing as soon as it is lost.

Firing a job means enqueueing ``worker.run_job(name)`` (any worker runs it) or, ``inline``, running
it in this process. Jobs are idempotent, so a job fired twice around a leadership change is harmless.

While Redis refuses (an outage), the scheduler logs one line, stops trying every job at every
interval and probes with one enqueue at a time under an exponential backoff (1 s up to 10 s); the
jobs whose firing was skipped meanwhile are enqueued once each as soon as Redis takes a message
again, with one line saying so. A database outage (the lock connection) is logged the same way:
one line when it starts, one when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
import psycopg
import redis
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import make_url

from distnet.db import make_engine, make_sessionmaker, resolve_database_url
from distnet.kit.outage import Outage
from distnet.settings import Settings
from distnet.worker import jobs as jobs_module
from distnet.worker import repository as repo
from distnet.worker.jobs import Job
from distnet.worker.tasks import run_job

logger = logging.getLogger(__name__)

LOCK_KEY = 0x64_6E_73_63_68_65_64  # "dnsched": one scheduler leader per database
APPLICATION_NAME = "distnet-scheduler"
BROKER_ERRORS = (redis.RedisError, dramatiq.errors.ConnectionError, OSError)
"""What an enqueue raises when Redis is down, refusing (loading, read-only, out of memory) or slow."""


def _conninfo(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class LeaderScheduler:
    def __init__(
        self,
        settings: Settings,
        *,
        database_url: str | None = None,
        jobs: list[Job] | None = None,
        inline: bool = False,
        retry_interval: float = 5.0,
        heartbeat: float = 5.0,
        lock_key: int = LOCK_KEY,
        name: str | None = None,
        broker: dramatiq.Broker | None = None,
        broker_backoff: tuple[float, float] = (1.0, 10.0),
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.jobs = jobs_module.JOBS if jobs is None else jobs
        self.inline = inline
        self.retry_interval = retry_interval
        self.heartbeat = heartbeat
        self.lock_key = lock_key
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.is_leader = False
        self.terms = 0
        """How many times this instance became leader."""
        self.fired: list[str] = []
        """Names of the jobs fired by this instance (most recent last; capped)."""
        self._stopping = asyncio.Event()
        self._scheduler: AsyncIOScheduler | None = None
        self._sessionmaker: Any = None
        self._standby_conn: psycopg.AsyncConnection[Any] | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._engine: Any = None
        self._broker = broker
        """Where jobs are enqueued; None = the broker of the ``worker.run_job`` actor."""
        self.broker_outage = Outage(f"scheduler {self.name}: Redis (broker)", logger, *broker_backoff)
        self.database_outage = Outage(
            f"scheduler {self.name}: PostgreSQL", logger, retry_interval, retry_interval
        )
        self._missed: set[str] = set()
        """Jobs not enqueued during the current broker outage; each is sent once when it ends."""

    # ------------------------------------------------------------------ leadership loop

    async def run(self) -> None:
        """Run until :meth:`stop`: wait for the lock, lead while holding it, repeat."""
        try:
            while not self._stopping.is_set():
                conn = await self._try_lock()
                if conn is None:
                    await self._sleep(self.retry_interval)
                    continue
                try:
                    await self._lead(conn)
                finally:
                    await self._step_down(conn)
                # give a standby the first chance at the lock when we lost it through our own fault
                await self._sleep(self.retry_interval)
        finally:
            if self._standby_conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await self._standby_conn.close()
                self._standby_conn = None
            if self._engine is not None:
                await self._engine.dispose()
                self._engine = self._sessionmaker = None

    async def stop(self) -> None:
        self._stopping.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _url(self) -> str:
        if self.database_url is None:
            self.database_url = resolve_database_url(self.settings)
        return self.database_url

    async def _try_lock(self) -> psycopg.AsyncConnection[Any] | None:
        """The lock connection if we now hold the lock, else None. A standby keeps its connection
        open between attempts (operators see it in pg_stat_activity; no reconnect every poll)."""
        conn = self._standby_conn
        if conn is None or conn.closed:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    _conninfo(self._url()),
                    autocommit=True,
                    connect_timeout=5,
                    application_name=f"{APPLICATION_NAME}:{self.name}"[:63],
                    # Let the server notice a vanished leader's connection (and free the lock) quickly.
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                )
            except psycopg.OperationalError as exc:
                self.database_outage.failed(exc)
                return None
            self._standby_conn = conn
        try:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,))).fetchone()
            got = row is not None and row[0]
        except psycopg.Error as exc:
            self.database_outage.failed(exc)
            with contextlib.suppress(psycopg.Error):
                await conn.close()
            self._standby_conn = None
            return None
        self.database_outage.succeeded()
        if not got:
            return None
        self._standby_conn = None
        return conn

    async def _lead(self, conn: psycopg.AsyncConnection[Any]) -> None:
        logger.info("scheduler %s: leader; firing %d jobs", self.name, len(self.jobs))
        self.is_leader = True
        self.terms += 1
        scheduler = AsyncIOScheduler(timezone=UTC)
        for job in self.jobs:
            first_run = {"next_run_time": datetime.now(UTC)} if job.run_at_start else {}
            scheduler.add_job(
                self._fire,
                "interval",
                args=(job,),
                id=job.name,
                name=job.name,
                seconds=job.interval.total_seconds(),
                # never two runs of one job from this leader; after a stall, one catch-up run only
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(job.interval.total_seconds())),
                **first_run,
            )
        self._scheduler = scheduler
        scheduler.start()
        try:
            while not self._stopping.is_set():
                await self._sleep(self.heartbeat)
                try:
                    await conn.execute("SELECT 1")
                except psycopg.Error as exc:
                    logger.error(
                        "scheduler %s: lost the leader connection (%s); stepping down", self.name, exc
                    )
                    return
        finally:
            self.is_leader = False
            scheduler.pause()
            # Let running jobs finish their transaction: shutdown() would cancel them mid-statement.
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=30)
            scheduler.shutdown(wait=False)
            self._scheduler = None

    async def _step_down(self, conn: psycopg.AsyncConnection[Any]) -> None:
        with contextlib.suppress(psycopg.Error):
            if not conn.closed:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
        with contextlib.suppress(psycopg.Error):
            await conn.close()
        logger.info("scheduler %s: no longer leader", self.name)

    # ------------------------------------------------------------------ firing

    async def _fire(self, job: Job) -> None:
        if not self.is_leader:
            return
        self.fired.append(job.name)
        del self.fired[:-1000]
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            if self.inline:
                await jobs_module.run_job(
                    job.name, sessionmaker=self._inline_sessionmaker(), settings=self.settings, jobs=self.jobs
                )
            else:
                await self._send(job)
        except Exception:
            logger.exception("scheduler %s: job %s failed", self.name, job.name)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _send(self, job: Job) -> None:
        """Enqueue ``job``; during a broker outage, skip it (remembered) unless the backoff says probe."""
        outage = self.broker_outage
        if not outage.should_attempt():
            self._missed.add(job.name)
            return
        try:
            await asyncio.to_thread(self._enqueue, job)
        except BROKER_ERRORS as exc:
            outage.failed(exc)
            self._missed.add(job.name)
            return
        if outage.succeeded() is None:
            return
        # Catch up: every job that should have fired during the outage goes out once (the one just
        # sent included). A second outage at once keeps the rest for the next recovery.
        missed, self._missed = sorted(self._missed - {job.name}), set()
        by_name = jobs_module.jobs_by_name(self.jobs)
        for i, name in enumerate(missed):
            try:
                await asyncio.to_thread(self._enqueue, by_name[name])
            except BROKER_ERRORS as exc:
                outage.failed(exc)
                self._missed = set(missed[i:])
                return
        logger.info(
            "scheduler %s: caught up, sent %d job(s) skipped during the outage", self.name, len(missed) + 1
        )

    def _enqueue(self, job: Job) -> None:
        # A message older than a few intervals is stale (the next one is on its way): dropped by
        # AgeLimit, so a worker back from an outage does not replay a backlog of relay runs.
        max_age_ms = int(max(job.interval.total_seconds() * 3, 30) * 1000)
        message = run_job.message_with_options(args=(job.name,), max_age=max_age_ms)
        (self._broker or run_job.broker).enqueue(message)

    def _inline_sessionmaker(self) -> Any:
        if self._sessionmaker is None:
            self._engine = make_engine(self._url(), pool_size=2)
            self._sessionmaker = make_sessionmaker(self._engine)
        return self._sessionmaker


def leader_of(database_url: str, lock_key: int = LOCK_KEY) -> str | None:
    """application_name of the connection holding the leader lock (operators, tests)."""
    with psycopg.connect(_conninfo(database_url), autocommit=True) as conn:
        row = conn.execute(repo.LEADER_OF, (lock_key,)).fetchone()
    return row[0] if row else None


def install_signal_handlers(stop: Callable[[], Any]) -> None:
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(stop()))
