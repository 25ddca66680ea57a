"""Local mode: a dramatiq worker and the scheduler inside the API process.

``distnet serve`` with no service URLs runs everything in one process: the API on uvicorn's loop,
a dramatiq worker (its own threads and event loop) consuming the same broker as a standalone
``distnet worker`` would, and a scheduler that competes for the leader lock like a standalone
``distnet scheduler`` (so starting one of those beside ``serve`` is harmless: one leader fires).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import Litestar

from distnet.db import resolve_database_url
from distnet.settings import Settings
from distnet.worker.broker import configure_worker_database
from distnet.worker.runner import start_worker
from distnet.worker.scheduler import LeaderScheduler

logger = logging.getLogger(__name__)


def attach_background(
    app: Litestar,
    settings: Settings,
    *,
    threads: int = 2,
    database_url: str | None = None,
    scheduler: bool = True,
) -> None:
    """Start the in-process worker and scheduler with the app, stop them with it."""
    running: dict[str, Any] = {}

    async def start() -> None:
        url = database_url or resolve_database_url(settings)
        configure_worker_database(url)
        running["worker"] = await asyncio.to_thread(start_worker, threads)
        if scheduler:
            leader = LeaderScheduler(settings, database_url=url, name=f"serve:{id(app):x}")
            running["leader"] = leader
            running["leader_task"] = asyncio.create_task(leader.run(), name="distnet-scheduler")
        logger.info(
            "in-process worker (%d threads)%s started", threads, " and scheduler" if scheduler else ""
        )

    async def stop() -> None:
        leader = running.pop("leader", None)
        task = running.pop("leader_task", None)
        if leader is not None and task is not None:
            await leader.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, timeout=40)
        worker = running.pop("worker", None)
        if worker is not None:
            await asyncio.to_thread(worker.stop, 30_000)
        configure_worker_database(None)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.state.background = running
