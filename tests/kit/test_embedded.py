"""Embedded PostgreSQL / Redis for local mode: real servers, started once per data dir and shared."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import create_engine, text

from distnet.kit.embedded import (
    create_database,
    drop_database,
    ensure_postgres,
    ensure_redis,
    stop_embedded,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="process checks need /proc")


def _fresh_data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: when run as root the servers run as `nobody`, which must be able to reach it.
    data_dir = Path(tempfile.mkdtemp(prefix="distnet-embedded-test-"))
    try:
        yield data_dir
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    yield from _fresh_data_dir()


@pytest.fixture
def fresh_data_dir() -> Iterator[Path]:
    yield from _fresh_data_dir()


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _select_1(url: str) -> int:
    with psycopg.connect(_conninfo(url), connect_timeout=5) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def _processes(predicate: Any) -> list[int]:
    """Pids of live (non-zombie) processes whose (cmdline, cwd) satisfy predicate."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd") if cmdline else ""
        except OSError:
            continue
        if cmdline and predicate(cmdline, cwd):
            pids.append(int(entry.name))
    return pids


def _postmasters(data_dir: Path) -> list[int]:
    needle = b"\0-D\0" + str(data_dir.resolve() / "postgres").encode() + b"\0"
    return _processes(lambda cmdline, cwd: needle in cmdline)


def _redis_servers(data_dir: Path) -> list[int]:
    rdir = str(data_dir.resolve() / "redis")
    return _processes(lambda cmdline, cwd: b"redis-server" in cmdline and cwd == rdir)


def _wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_is_started_once_and_reused(data_dir: Path) -> None:
    started = time.monotonic()
    url = ensure_postgres(data_dir)
    print(f"first ensure_postgres: {time.monotonic() - started:.2f}s")

    assert url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert url.endswith("/distnet")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert port not in (5432, 6379)
    assert ensure_postgres(data_dir) == url
    assert _select_1(url) == 1
    assert len(_postmasters(data_dir)) == 1
    assert not list(data_dir.glob("*initdb-tmp*"))


def test_postgres_url_works_with_sqlalchemy(data_dir: Path) -> None:
    engine = create_engine(ensure_postgres(data_dir))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar() == "distnet"
    finally:
        engine.dispose()


def test_postgres_restarts_after_stop(data_dir: Path) -> None:
    url = ensure_postgres(data_dir)
    stop_embedded(data_dir)
    assert _postmasters(data_dir) == []
    with pytest.raises(psycopg.OperationalError):
        _select_1(url)

    assert ensure_postgres(data_dir) == url  # same port again: it is still free
    assert _select_1(url) == 1


def test_postgres_restarts_after_crash(data_dir: Path) -> None:
    ensure_postgres(data_dir)
    [pid] = _postmasters(data_dir)
    os.kill(pid, signal.SIGKILL)  # leaves a stale postmaster.pid behind
    _wait_until(lambda: _postmasters(data_dir) == [])
    assert (data_dir / "postgres" / "postmaster.pid").exists()

    url = ensure_postgres(data_dir)
    assert _select_1(url) == 1
    assert len(_postmasters(data_dir)) == 1


def test_postgres_starts_despite_pid_file_naming_another_process(data_dir: Path) -> None:
    url = ensure_postgres(data_dir)
    pid_file = data_dir / "postgres" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    stop_embedded(data_dir)
    # As after a reboot: the recorded pid now belongs to some unrelated live process (here: us).
    pid_file.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")

    assert ensure_postgres(data_dir) == url
    assert _select_1(url) == 1


def test_create_and_drop_database(data_dir: Path) -> None:
    admin_url = ensure_postgres(data_dir)
    url = create_database(admin_url, "distnet_test_roundtrip")
    assert url == admin_url.rsplit("/", 1)[0] + "/distnet_test_roundtrip"
    conn = psycopg.connect(_conninfo(url), autocommit=True)
    try:
        assert conn.execute("SELECT current_database()").fetchone() == ("distnet_test_roundtrip",)
        drop_database(admin_url, "distnet_test_roundtrip")  # an open session does not block it (FORCE)
    finally:
        conn.close()
    with psycopg.connect(_conninfo(admin_url)) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = 'distnet_test_roundtrip'").fetchone()
            is None
        )
    drop_database(admin_url, "distnet_test_roundtrip")  # dropping a missing database is fine


# --------------------------------------------------------------------------- Redis


def test_redis_is_started_once_and_shared(data_dir: Path) -> None:
    url = ensure_redis(data_dir)
    assert url.startswith("redis://127.0.0.1:")
    assert ensure_redis(data_dir) == url
    a, b = redis.Redis.from_url(url), redis.Redis.from_url(ensure_redis(data_dir))
    try:
        assert a.ping()
        a.set("distnet:test", "shared")
        assert b.get("distnet:test") == b"shared"
    finally:
        a.close()
        b.close()
    assert len(_redis_servers(data_dir)) == 1

    broker = RedisBroker(url=url)
    try:
        assert broker.client.ping()
    finally:
        broker.close()


def test_redis_restarts_after_stop_and_crash(data_dir: Path) -> None:
    url = ensure_redis(data_dir)
    stop_embedded(data_dir)
    _wait_until(lambda: _redis_servers(data_dir) == [])
    assert ensure_redis(data_dir) == url

    [pid] = _redis_servers(data_dir)
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: _redis_servers(data_dir) == [])
    url = ensure_redis(data_dir)
    client = redis.Redis.from_url(url)
    try:
        assert client.ping()
    finally:
        client.close()
    assert len(_redis_servers(data_dir)) == 1


# --------------------------------------------------------------------------- several processes


def _ensure_both(data_dir: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=60)  # both processes race from here
        results.put((ensure_postgres(Path(data_dir)), ensure_redis(Path(data_dir))))
    except BaseException as exc:
        results.put(repr(exc))
        raise


def test_concurrent_first_start_starts_one_of_each(fresh_data_dir: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_ensure_both, args=(str(fresh_data_dir), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0, got

    assert got[0] == got[1], got
    pg_url, redis_url = got[0]
    # The servers outlive the processes that started them; a later process reuses them.
    assert ensure_postgres(fresh_data_dir) == pg_url
    assert ensure_redis(fresh_data_dir) == redis_url
    assert _select_1(pg_url) == 1
    assert len(_postmasters(fresh_data_dir)) == 1
    assert len(_redis_servers(fresh_data_dir)) == 1
