"""Local mode: the API process runs a worker and the scheduler; both start and stop with the app."""

from __future__ import annotations

import asyncio
import time

from litestar.testing import AsyncTestClient

from distnet.app import create_app
from distnet.kit.outbox import emit
from distnet.worker.inprocess import attach_background
from distnet.worker.scheduler import leader_of


async def test_serve_runs_worker_and_scheduler_in_process(
    settings, database_url, redis_url, sessionmaker, stub_broker, handler_log
):
    async with sessionmaker() as s:
        event_id = str(await emit(s, "test.ping", {"n": 1}))
        await s.commit()
    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    attach_background(app, settings, database_url=database_url)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health")).status_code == 200
        worker = app.state.background["worker"]
        assert worker is not None
        threads = [*worker.workers, *worker.consumers.values()]
        assert threads and all(t.is_alive() for t in threads)
        # the scheduler's relay job (enqueued) → worker → dispatch → consumers, all in this process
        deadline = time.monotonic() + 60  # generous: CI machines can be busy
        while len(handler_log) < 2:
            assert time.monotonic() < deadline, "event was not delivered in-process"
            await asyncio.sleep(0.05)
        assert leader_of(database_url) is not None
        async with sessionmaker() as s:
            await emit(s, "test.ping", {"n": 2})
            await s.commit()
        deadline = time.monotonic() + 60  # generous: CI machines can be busy
        while len(handler_log) < 4:
            assert time.monotonic() < deadline, "second event was not delivered"
            await asyncio.sleep(0.05)
    assert {e["id"] for _, e in handler_log[:2]} == {event_id}
    # shutdown released the leader lock and stopped the worker's threads
    assert leader_of(database_url) is None
    assert "worker" not in app.state.background
    # the in-process worker's threads (workers and consumers) have all stopped
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in threads):
        assert time.monotonic() < deadline, "worker threads left running after shutdown"
        await asyncio.sleep(0.1)
