"""Read replicas (kit/replicas.py) on real servers of the test's own: a primary and a streaming
replica made with pg_basebackup from the embedded binaries, on loopback. Read-only requests go to
the replica; a lagging replica and a stopped one send them to the primary; writes, and a
writer's next reads, stay on the primary."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from distnet.app import create_app
from distnet.kit import auth, embedded
from distnet.settings import DatabaseSettings
from tests.conftest import bearer
from tests.factories import register
from tests.own_servers import OwnPostgres, libpq, own_postgres, wait_until

ADMIN = "dn_00000001_replica-test-admin-key-one"
WRITER = "dn_00000002_replica-test-admin-key-two"


@pytest.fixture
def primary() -> Iterator[OwnPostgres]:
    yield from own_postgres()


@pytest.fixture
def replica_of(primary: OwnPostgres) -> Iterator[tuple[str, str, Path]]:
    """(primary database URL, the same database on a streaming replica, the replica's data dir)."""
    url = primary.new_database()
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        for raw in (ADMIN, WRITER):
            conn.execute(
                "INSERT INTO api_key (name, prefix, key_hash, roles) VALUES ('t', 'x', %s, '{admin}')",
                [auth.hash_key(raw)],
            )
    data_dir = Path(tempfile.mkdtemp(prefix="distnet-replica-"))
    try:
        embedded._prepare(data_dir)
        pgdata = data_dir / "postgres"
        pgdata.mkdir(mode=0o700)
        embedded._give_to_service_user(pgdata)
        port = url.split("@127.0.0.1:", 1)[1].split("/", 1)[0]
        embedded._run(
            [
                embedded._pg_bin("pg_basebackup"),
                "-D",
                str(pgdata),
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            cwd=data_dir,
            timeout=120,
        )
        replica_port = embedded._pg_start(data_dir, pgdata)
        yield url, url.replace(f":{port}/", f":{replica_port}/"), data_dir
    finally:
        embedded.stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def _on_replica(url: str, sql: str) -> object:
    with psycopg.connect(libpq(url), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
    return row[0] if row else None


def _caught_up(replica: str) -> bool:
    return bool(_on_replica(replica, "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"))


async def test_reads_go_to_the_replica_and_fall_back_to_the_primary(replica_of, settings, redis_url) -> None:
    primary_url, replica_url, replica_dir = replica_of
    db = DatabaseSettings(url=primary_url, pool_size=3, replica_urls=(replica_url,), replica_max_lag=2.0)
    app = create_app(
        dataclasses.replace(settings, database=db), database_url=primary_url, redis_url=redis_url
    )
    auth._principal_cache.clear()
    async with AsyncTestClient(app=app) as client:
        replicas = app.state.replicas
        admin, writer = bearer(ADMIN), bearer(WRITER)
        first = await register(client, writer)
        wait_until(
            lambda: (
                _caught_up(replica_url)
                and _on_replica(replica_url, f"SELECT count(*) FROM distributor WHERE id = {first['id']}")
                == 1
            )
        )
        answer = await client.get(f"/api/v1/distributors/{first['id']}", headers=admin)
        assert answer.status_code == 200, answer.text
        assert replicas.routed == {"replica": 1, "lagging": 0, "down": 0}

        # routing: with replay paused, what the primary wrote since is not on the replica yet
        _on_replica(replica_url, "SELECT pg_wal_replay_pause()")
        second = await register(client, writer)  # a write: on the primary
        replicas.max_lag = 3600.0  # (this test's knob: the setting allows 0-4 s)
        answer = await client.get(f"/api/v1/distributors/{second['id']}", headers=admin)
        assert answer.status_code == 404  # the replica answered, and it is behind
        assert replicas.routed["replica"] == 2
        # read-after-write: the key that wrote reads from the primary meanwhile
        replicas.max_lag = 2.0
        answer = await client.get(f"/api/v1/distributors/{second['id']}", headers=writer)
        assert answer.status_code == 200 and replicas.routed["replica"] == 2

        # lag beyond the bound: the primary answers
        replicas.max_lag = 0.2
        await asyncio.sleep(0.5)
        answer = await client.get(f"/api/v1/distributors/{second['id']}", headers=admin)
        assert answer.status_code == 200
        assert replicas.routed == {"replica": 2, "lagging": 1, "down": 0}

        # caught up again: back on the replica
        _on_replica(replica_url, "SELECT pg_wal_replay_resume()")
        wait_until(lambda: _caught_up(replica_url))
        replicas.max_lag = 2.0
        answer = await client.get(f"/api/v1/distributors/{second['id']}/downline", headers=admin)
        assert answer.status_code == 200 and replicas.routed["replica"] == 3

        # an outage of the replica: reads degrade to the primary, no error
        embedded._pg_stop(replica_dir / "postgres")
        for _ in range(3):
            answer = await client.get(f"/api/v1/distributors/{second['id']}", headers=admin)
            assert answer.status_code == 200, answer.text
        assert replicas.routed["down"] == 1  # tried once, then left alone for RETRY_DOWN_SECONDS
        assert replicas.routed["replica"] == 3
        # writes never touch a replica
        third = await register(client, writer)
        assert third["id"] > second["id"]
