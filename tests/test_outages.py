"""Outages (issue 13): Redis down under the scheduler and the outbox relay; PostgreSQL crashed and
restarted under a stream of orders to a running ``distnet serve``.

Both run against a PostgreSQL and a Redis that the test starts itself from the embedded binaries
(tests/own_servers.py), never the servers other test workers share."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import psycopg
import pytest
import redis
from dramatiq import Message

from distnet.db import make_engine, make_sessionmaker, session_scope
from distnet.events.relay import broker_outage, relay_job
from distnet.kit.auth import create_key
from distnet.kit.liveserver import free_port
from distnet.kit.outbox import emit
from distnet.ledger.verify import verify
from distnet.worker.broker import redis_broker
from distnet.worker.jobs import Job
from distnet.worker.scheduler import LeaderScheduler
from tests.own_servers import OwnPostgres, libpq, own_postgres
from tests.worker.support import RedisServer
from tests.worker.support import free_port as spare_port


@pytest.fixture(scope="module")
def own_pg() -> Iterator[OwnPostgres]:
    yield from own_postgres()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(port=spare_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def noop(session) -> None:
    return None


def _outage_lines(records: list[logging.LogRecord], who: str) -> tuple[int, int]:
    mine = [r for r in records if r.getMessage().startswith(who) and r.levelno >= logging.INFO]
    down = sum("unreachable (" in r.getMessage() for r in mine)
    back = sum("reachable again after" in r.getMessage() for r in mine)
    return down, back


def _queued_jobs(client: redis.Redis, namespace: str) -> list[str]:
    return [Message.decode(raw).args[0] for raw in client.hvals(f"{namespace}:jobs.msgs")]


async def test_redis_down_scheduler_and_relay_log_once_back_off_and_catch_up(
    own_pg, own_redis, settings, caplog
):
    database_url = own_pg.new_database()
    namespace = "outage"
    broker = redis_broker(own_redis.url, namespace=namespace)
    jobs = [
        Job("often", timedelta(seconds=0.2), "tests.test_outages.noop", run_at_start=True),
        Job("rarely", timedelta(seconds=1.5), "tests.test_outages.noop"),
    ]
    leader = LeaderScheduler(
        settings,
        database_url=database_url,
        jobs=jobs,
        broker=broker,
        retry_interval=0.1,
        heartbeat=0.1,
        lock_key=7_000_000_131,
        name="outage",
        broker_backoff=(0.2, 1.0),
    )
    engine = make_engine(database_url, pool_size=2)
    sessionmaker = make_sessionmaker(engine)
    relay_runs = {"published": 0}
    stop = asyncio.Event()

    async def relay_every_200ms() -> None:  # what the scheduler's outbox_relay job does, on our own Redis
        while not stop.is_set():
            async with session_scope(sessionmaker) as session:
                relay_runs["published"] += await relay_job(session, broker=broker)
            await asyncio.sleep(0.2)

    async def emit_events(n: int) -> None:
        async with session_scope(sessionmaker) as session:
            for i in range(n):
                await emit(session, "test.outage", {"n": i})

    caplog.set_level(logging.DEBUG, logger="distnet")
    running = [asyncio.create_task(leader.run()), asyncio.create_task(relay_every_200ms())]
    client = redis.Redis.from_url(own_redis.url)
    try:
        await emit_events(3)
        await _until(lambda: relay_runs["published"] == 3 and "often" in _queued_jobs(client, namespace))

        own_redis.kill()
        caplog.clear()
        outage_started = time.monotonic()
        await emit_events(7)  # business goes on; the events wait in the outbox
        await asyncio.sleep(4)
        outage_records = list(caplog.records)
        own_redis.start()  # a fresh, empty Redis on the same port
        await _until(lambda: {"often", "rarely"} <= set(_queued_jobs(client, namespace)), within=10)
        await _until(lambda: relay_runs["published"] == 10, within=10)
        recovered_after = time.monotonic() - outage_started
    finally:
        stop.set()
        await leader.stop()
        await asyncio.wait_for(asyncio.gather(*running), 10)
        await engine.dispose()
        client.close()
        broker.close()

    records = caplog.records
    assert _outage_lines(records, "scheduler outage: Redis") == (1, 1), [r.getMessage() for r in records]
    assert _outage_lines(records, "outbox relay: Redis") == (1, 1), [r.getMessage() for r in records]
    assert not [r for r in records if r.exc_info], "no traceback for an outage"
    assert not [
        r for r in outage_records if r.levelno >= logging.WARNING and "unreachable (" not in r.getMessage()
    ]
    # backed off: in ~4 s with the 0.2 s job, at most a handful of probes (0.2, 0.4, 0.8, 1, 1, ...)
    assert 2 <= len(_probes(outage_records, "scheduler outage")) <= 10
    assert 1 <= len(_probes(outage_records, "outbox relay")) <= 6
    assert not leader.broker_outage.is_down and not broker_outage(broker).is_down
    assert any("caught up, sent 2 job(s)" in r.getMessage() for r in records), [
        r.getMessage() for r in records
    ]
    assert recovered_after < 4 + 6


def _probes(records: list[logging.LogRecord], who: str) -> list[logging.LogRecord]:
    return [r for r in records if r.getMessage().startswith(who) and "unreachable" in r.getMessage()]


async def _until(check, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- PostgreSQL restarted


@dataclass
class Attempt:
    external_id: str
    started: float
    ended: float
    status: int
    retry_after: str | None = None
    code: str | None = None


async def _create_admin_key(database_url: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            _, raw = await create_key(session, name="outage admin", roles=["admin"])
    finally:
        await engine.dispose()
    return raw


def _serve(database_url: str, redis_url: str, port: int, data_dir, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "DISTNET_DATABASE_URL": database_url,
        "DISTNET_REDIS_URL": redis_url,
        "DISTNET_DATA_DIR": str(data_dir),
        "DISTNET_SECRET_KEY": "outage-test-secret",
    }
    env.pop("DISTNET_BROKER", None)
    return subprocess.Popen(
        [sys.executable, "-m", "distnet", "serve", "--port", str(port), "--no-workers"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def test_postgres_restarted_under_a_stream_of_orders(own_pg, own_redis, tmp_path):
    """PostgreSQL crashes (immediate stop, recovery from WAL on start) and comes back while four
    clients stream orders to one ``distnet serve`` process. Clients see 503 with Retry-After only
    while it is down, retry with the same external id, and every order exists exactly once; the
    server's pool recovers by itself (same process throughout)."""
    database_url = own_pg.new_database()
    admin = {"Authorization": f"Bearer {await _create_admin_key(database_url)}"}
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: ASYNC230 (a log file for the child)
    server = _serve(database_url, own_redis.url, port, tmp_path, log)
    attempts: list[Attempt] = []
    acknowledged: dict[str, int] = {}
    window: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await _wait_healthy(http, server)
            chain = [await _register(http, admin, None)]
            for _ in range(3):
                chain.append(await _register(http, {}, chain[-1]))
            seller = chain[-1]
            seller_auth = {"Authorization": f"Bearer {seller['api_key']}"}
            stop = asyncio.Event()

            async def stream(client_no: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    external_id = f"c{client_no}-{n}"
                    body = {
                        "external_id": external_id,
                        "card_number": seller["card"]["number"],
                        "amount": "10.00",
                    }
                    while True:  # a client retries the same order until it is acknowledged
                        started = time.monotonic()
                        resp = await http.post("/api/v1/orders", json=body, headers=seller_auth)
                        attempt = Attempt(
                            external_id,
                            started,
                            time.monotonic(),
                            resp.status_code,
                            resp.headers.get("retry-after"),
                            resp.json().get("code") if resp.status_code >= 400 else None,
                        )
                        attempts.append(attempt)
                        if resp.status_code in (200, 201):
                            acknowledged[external_id] = resp.json()["id"]
                            break
                        assert resp.status_code == 503, resp.text
                        await asyncio.sleep(float(resp.headers.get("retry-after", "1")) / 4)

            clients = [asyncio.create_task(stream(i)) for i in range(4)]
            await asyncio.sleep(2)
            before = len(acknowledged)
            window["down"] = time.monotonic()
            await asyncio.to_thread(own_pg.crash)
            await asyncio.sleep(2)
            await asyncio.to_thread(own_pg.start)
            window["up"] = time.monotonic()
            await asyncio.sleep(3)
            stop.set()
            await asyncio.wait_for(asyncio.gather(*clients), 60)
            assert (await http.get("/ready")).status_code == 200
            assert server.poll() is None, "serve was not restarted"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    unavailable = [a for a in attempts if a.status == 503]
    assert unavailable, "the outage was not seen"
    assert before > 0 and len(acknowledged) > before
    assert all(a.retry_after == "1" and a.code == "database-unavailable" for a in unavailable)
    # 503s only for requests under way when it went down or sent while it was down
    late = [a for a in unavailable if a.started > window["up"] or a.ended < window["down"]]
    assert not late, (late[:3], window)
    assert {a.status for a in attempts} <= {200, 201, 503}

    with psycopg.connect(libpq(database_url)) as conn:
        rows = conn.execute(
            "SELECT external_id, count(*), min(id) FROM orders GROUP BY external_id"
        ).fetchall()
        commissions = conn.execute("SELECT count(*) FROM commission").fetchone()[0]
    stored = {external_id: (count, order_id) for external_id, count, order_id in rows}
    assert set(stored) == set(acknowledged), "every acknowledged order is there, and nothing else"
    assert all(count == 1 for count, _ in stored.values())
    assert all(stored[e][1] == order_id for e, order_id in acknowledged.items())
    assert commissions == 3 * len(acknowledged)
    engine = make_engine(database_url, pool_size=1)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            report = await verify(session)
    finally:
        await engine.dispose()
    assert report.ok, [c for c in report.checks if not c.ok]


async def _wait_healthy(http: httpx.AsyncClient, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180  # a loaded CI machine can take a minute to import everything
    while True:
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
        await asyncio.sleep(0.2)


async def _register(http: httpx.AsyncClient, headers: dict[str, str], sponsor: dict | None) -> dict:
    body = {"name": "outage", "consent": {"terms_version": "2026-12", "privacy_version": "2026-12"}} | (
        {"sponsor_code": sponsor["code"]} if sponsor else {}
    )
    resp = await http.post("/api/v1/distributors", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()
