"""POST /settlements, GET /settlements: roles, answers, bad input; the CLI and the actors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from sqlalchemy import text

from tests.conftest import bearer
from tests.settlement.builders import days_ago
from tests.settlement.conftest import build_world

URL = "/api/v1/settlements"


async def test_post_settlement_runs_and_reports(client, make_key, sessionmaker, session):
    await build_world(sessionmaker)
    fin = bearer(await make_key("finance"))
    resp = await client.post(URL, headers=fin)
    assert resp.status_code == 201, resp.text
    run = resp.json()
    assert run["status"] == "done" and run["moved"] == 22 and run["withheld"] == 2
    assert run["triggered_by"].startswith("key:")
    again = await client.post(URL, json={"partitions": 3}, headers=fin)
    assert again.status_code == 201 and again.json()["moved"] == 0 and again.json()["amount"] == "0.00"
    listed = (await client.get(URL + "?limit=1", headers=bearer(await make_key("finance_approver")))).json()
    assert listed["items"][0]["id"] == again.json()["id"] and listed["next_cursor"]
    nxt = (await client.get(URL + f"?limit=1&cursor={listed['next_cursor']}", headers=fin)).json()
    assert nxt["items"][0]["id"] == run["id"]
    assert (await client.get(f"{URL}/{run['id']}", headers=fin)).json()["moved"] == 22


async def test_settlement_roles_and_bad_input(client, make_key):
    for role in ("distributor", "risk_admin", "finance_approver"):
        resp = await client.post(URL, headers=bearer(await make_key(role)))
        assert resp.status_code == 403, role
    fin = bearer(await make_key("finance"))
    future = days_ago(-1).isoformat()
    cases = [
        {"as_of": future},
        {"as_of": "2026-01-01T00:00:00"},
        {"as_of": "yesterday"},
        {"partitions": 0},
        {"partitions": 5000},
        {"bogus": True},
        {"partitions": "x"},
    ]
    for body in cases:
        resp = await client.post(URL, json=body, headers=fin)
        assert resp.status_code in (400, 422), (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(f"{URL}/424242", headers=fin)).status_code == 404
    assert (await client.get(f"{URL}?cursor=abc", headers=fin)).status_code in (400, 422)


def _cli_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DISTNET_DATABASE_URL": database_url,
        "DISTNET_SECRET_KEY": "test-secret-key",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }


async def run_cli(database_url: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "distnet.cli",
        *args,
        env=_cli_env(database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_distnet_settle_command(database_url, sessionmaker):
    await build_world(sessionmaker)
    code, out, err = await run_cli(database_url, "settle", "--partitions", "2")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["moved"] == 22 and result["partitions_done"] == 2 and result["triggered_by"] == "cli"


async def test_actors_plan_and_settle_partitions(sessionmaker, database_url, session, monkeypatch):
    """The actors' own code: ``settlement.run`` plans and fans out one message per partition,
    ``settlement.run_partition`` settles each. The fan-out is captured at ``send`` and the
    partition actor is run here, on this test's loop, so no other worker alive in this test
    process can take the messages (dramatiq keeps one AsyncIO loop thread per process; real
    workers are exercised in tests/worker)."""
    from distnet.settlement import tasks
    from distnet.worker.broker import configure_worker_database, dispose_worker_engines

    await build_world(sessionmaker)
    configure_worker_database(database_url)
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.run_partition, "send", lambda *args: sent.append(args))
    try:
        # the actors are async functions that dramatiq wraps to run on its loop thread
        planned = await tasks.run.fn.__wrapped__(None, 3)
        assert planned["enqueued"] == 3
        assert sorted(no for _, no in sent) == [1, 2, 3]
        for run_id, no in sent:
            assert await tasks.run_partition.fn.__wrapped__(run_id, no) is True
    finally:
        await dispose_worker_engines()
        configure_worker_database(None)
    row = (
        await session.execute(text("SELECT status, partitions, partitions_done, moved FROM settlement_run"))
    ).one()
    assert tuple(row) == ("done", 3, 3, 22)
    # a redelivered partition message is a no-op
    from distnet.settlement.service import process_partition

    assert await process_partition(session, run_id=1, partition_no=1) is None
