"""Scheduler leadership (one leader at a time, takeover when it dies) and the job runner."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from distnet.worker import jobs
from distnet.worker.jobs import Job
from distnet.worker.scheduler import APPLICATION_NAME, LeaderScheduler, leader_of

TICKS: list[tuple[str, bool]] = []


async def tick_a(session, settings):
    TICKS.append(("a", settings is not None))


async def tick_b(session):
    TICKS.append(("b", False))
    return (await session.execute(text("SELECT 41 + 1"))).scalar_one()


def instance(settings, database_url, target: str, name: str, lock_key: int) -> LeaderScheduler:
    job = Job("tick", timedelta(seconds=0.1), f"tests.worker.test_scheduler.{target}", run_at_start=True)
    return LeaderScheduler(
        settings,
        database_url=database_url,
        jobs=[job],
        inline=True,
        retry_interval=0.1,
        heartbeat=0.1,
        lock_key=lock_key,
        name=name,
    )


async def wait_until(check, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_one_leader_fires_jobs_and_the_other_takes_over(settings, database_url):
    TICKS.clear()
    key = 7_000_000_001
    first = instance(settings, database_url, "tick_a", "first", key)
    second = instance(settings, database_url, "tick_b", "second", key)
    run_first = asyncio.create_task(first.run())
    await wait_until(lambda: first.is_leader)
    run_second = asyncio.create_task(second.run())
    await wait_until(lambda: len(TICKS) >= 3)
    await asyncio.sleep(0.3)
    assert first.is_leader and not second.is_leader
    assert {who for who, _ in TICKS} == {"a"}
    assert TICKS[0] == ("a", True)  # the function that asks for settings gets them
    assert leader_of(database_url, key) == f"{APPLICATION_NAME}:first"

    await first.stop()
    await asyncio.wait_for(run_first, 5)
    await wait_until(lambda: second.is_leader)
    TICKS.clear()
    await wait_until(lambda: ("b", False) in TICKS)
    assert {who for who, _ in TICKS} == {"b"}
    assert leader_of(database_url, key) == f"{APPLICATION_NAME}:second"
    await second.stop()
    await asyncio.wait_for(run_second, 5)
    assert leader_of(database_url, key) is None


async def test_leader_whose_connection_is_killed_steps_down(settings, database_url):
    key = 7_000_000_002
    leader = instance(settings, database_url, "tick_b", "victim", key)
    task = asyncio.create_task(leader.run())
    await wait_until(lambda: leader.is_leader)
    # an admin (or a network failure) kills the lock connection: the lock is gone, so must the leader be
    import psycopg

    from distnet.worker.scheduler import _conninfo

    with psycopg.connect(_conninfo(database_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"{APPLICATION_NAME}:victim",),
        )
    await wait_until(lambda: leader.terms == 2, within=5)  # stepped down, then won the free lock again
    assert leader.is_leader
    await leader.stop()
    await asyncio.wait_for(task, 5)


def _spawn_scheduler(database_url: str, redis_url: str, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DISTNET_DATABASE_URL": database_url,
        "DISTNET_REDIS_URL": redis_url,
        "DISTNET_BROKER": "stub",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distnet.cli",
            "scheduler",
            "--inline",
            "--retry-interval",
            "0.2",
            "--heartbeat",
            "0.2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )


def _wait_standby(database_url: str, pid: int, within: float = 30.0) -> None:
    import psycopg

    from distnet.worker.scheduler import _conninfo

    deadline = time.monotonic() + within
    while True:
        with psycopg.connect(_conninfo(database_url), autocommit=True) as conn:
            if conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name LIKE %s",
                (f"{APPLICATION_NAME}:%:{pid}",),
            ).fetchone():
                return
        assert time.monotonic() < deadline, f"{pid} never connected"
        time.sleep(0.1)


def _wait_leader(database_url: str, pid: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while leader_of(database_url) is None or not leader_of(database_url).endswith(f":{pid}"):
        assert time.monotonic() < deadline, f"{pid} never became leader (leader: {leader_of(database_url)})"
        time.sleep(0.1)


def test_two_scheduler_processes_failover_when_the_leader_is_killed(database_url, redis_url, tmp_path):
    log_a, log_b = open(tmp_path / "a.log", "wb"), open(tmp_path / "b.log", "wb")
    a = _spawn_scheduler(database_url, redis_url, log_a)
    b = None
    try:
        _wait_leader(database_url, a.pid)
        b = _spawn_scheduler(database_url, redis_url, log_b)
        _wait_standby(database_url, b.pid)  # b is up and polling, but a keeps the lock
        time.sleep(0.5)
        assert b.poll() is None
        assert leader_of(database_url).endswith(f":{a.pid}")

        a.send_signal(signal.SIGKILL)  # no goodbye: PostgreSQL frees the lock when the socket closes
        a.wait(timeout=10)
        _wait_leader(database_url, b.pid, within=15)

        b.send_signal(signal.SIGTERM)  # graceful stop: releases the lock, exits 0
        assert b.wait(timeout=15) == 0, (tmp_path / "b.log").read_text()
        assert leader_of(database_url) is None
        b_log = (tmp_path / "b.log").read_text()
        assert "leader; firing" in b_log and "Traceback" not in b_log, b_log
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        log_a.close()
        log_b.close()


async def test_run_job_skips_missing_targets_and_logs_once(sessionmaker, settings, caplog):
    listed = [
        Job("ghost", timedelta(seconds=1), "distnet.nonexistent_domain.service.run"),
        Job("ghost2", timedelta(seconds=1), "distnet.events.relay.no_such_function"),
        Job("real", timedelta(seconds=1), "tests.worker.test_scheduler.tick_b"),
    ]
    with caplog.at_level("WARNING", logger="distnet.worker.jobs"):
        for _ in range(3):
            assert (
                await jobs.run_job("ghost", sessionmaker=sessionmaker, settings=settings, jobs=listed) is None
            )
            assert (
                await jobs.run_job("ghost2", sessionmaker=sessionmaker, settings=settings, jobs=listed)
                is None
            )
    assert sum("distnet.nonexistent_domain.service.run" in r.message for r in caplog.records) == 1
    assert await jobs.run_job("real", sessionmaker=sessionmaker, settings=settings, jobs=listed) == 42
    with pytest.raises(KeyError):
        await jobs.run_job("nope", sessionmaker=sessionmaker, settings=settings, jobs=listed)


def test_job_list_names_every_periodic_job():
    names = {job.name for job in jobs.JOBS}
    assert {
        "outbox_relay",
        "erase_personal_data",
        "settlement",
        "risk_scan",
        "maintenance_windows",
        "forfeit_withheld",
        "appeal_claim_expiry",
        "rank_evaluation",
    } <= names
    assert jobs.jobs_by_name()["outbox_relay"].interval == timedelta(seconds=2)
    # the jobs that exist today resolve to async functions
    for name in ("outbox_relay", "erase_personal_data"):
        assert asyncio.iscoroutinefunction(jobs.resolve(jobs.jobs_by_name()[name].target))


async def test_erasure_job_runs_through_the_runner(sessionmaker, settings):
    assert await jobs.run_job("erase_personal_data", sessionmaker=sessionmaker, settings=settings) == 0


async def test_scheduler_enqueues_jobs_that_a_worker_runs_end_to_end(
    settings, database_url, sessionmaker, stub_broker, stub_worker, handler_log
):
    """Scheduler → worker.run_job("outbox_relay") → relay → events.dispatch → consumers."""
    from distnet.kit.outbox import emit

    async with sessionmaker() as s:
        event_id = str(await emit(s, "test.ping", {"n": 1}))
        await s.commit()
    relay_only = [j for j in jobs.JOBS if j.name == "outbox_relay"]
    leader = LeaderScheduler(
        settings,
        database_url=database_url,
        jobs=relay_only,
        retry_interval=0.1,
        heartbeat=0.1,
        lock_key=7_000_000_003,
        name="e2e",
    )
    task = asyncio.create_task(leader.run())
    try:
        await wait_until(lambda: len(handler_log) == 2)
    finally:
        await leader.stop()
        await asyncio.wait_for(task, 5)
    assert {e["id"] for _, e in handler_log} == {event_id}
    assert "outbox_relay" in leader.fired
