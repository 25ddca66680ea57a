"""Orders and refunds on one upline from several connections at once (issue 13): with one lock
order for every writer (ARCHITECTURE.md, "Lock order") PostgreSQL detects no deadlock and no
client gets a 503; and a unit of work PostgreSQL aborts at COMMIT is retried whole (kit/retry)."""

from __future__ import annotations

import asyncio
import os
import random
import time

import httpx
import psycopg
import pytest

from distnet.app import create_app
from distnet.kit.liveserver import serve_in_thread
from distnet.kit.retry import ATTEMPTS
from tests.factories import auth, make_tree, register
from tests.orders.helpers import order_body, place, verify_ok

SECONDS = float(os.environ.get("DISTNET_MIXED_LOAD_SECONDS", "30"))
ORDER_CLIENTS = 3
REFUND_CLIENTS = 2


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _deadlocks(database_url: str) -> int:
    with psycopg.connect(_plain(database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


@pytest.fixture
def live_url(settings, database_url, redis_url):
    with serve_in_thread(create_app(settings, database_url=database_url, redis_url=redis_url)) as url:
        yield url


async def test_orders_and_refunds_on_one_upline_never_deadlock(client, admin_headers, database_url, live_url):
    # the platform's accounts first (its first sale), the beneficiaries' later: the order of
    # account ids that made a refund's commit and an order's commit deadlock before
    first = await make_tree(client, admin_headers, 1)
    await place(client, first[1])
    chain = await make_tree(client, admin_headers, 2)  # root -> a -> b
    sellers = [chain[2]] + [
        await register(client, sponsor=chain[2], name=f"s{i}") for i in range(ORDER_CLIENTS)
    ]
    deadlocks_before = _deadlocks(database_url)

    placed: asyncio.Queue[dict] = asyncio.Queue()
    statuses: dict[str, list[int]] = {"order": [], "refund": []}
    deadline = time.monotonic() + SECONDS

    async def sell(http: httpx.AsyncClient, seller: dict) -> None:
        while time.monotonic() < deadline:
            resp = await http.post(
                "/api/v1/orders",
                json=order_body(seller, f"{random.randint(10, 500)}.00"),
                headers=auth(seller),
            )
            statuses["order"].append(resp.status_code)
            if resp.status_code == 201:
                placed.put_nowait(resp.json())

    async def refund(http: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            try:
                order = await asyncio.wait_for(placed.get(), timeout=1)
            except TimeoutError:
                continue
            amount = order["amount"] if random.random() < 0.5 else "1.00"
            resp = await http.post(
                f"/api/v1/orders/{order['id']}/refunds",
                json={"external_id": f"mix-{order['id']}", "amount": amount},
                headers=admin_headers,
            )
            statuses["refund"].append(resp.status_code)

    limits = httpx.Limits(max_connections=1)  # each client its own connection to the server
    clients = [
        httpx.AsyncClient(base_url=live_url, timeout=60, limits=limits)
        for _ in range(ORDER_CLIENTS + REFUND_CLIENTS)
    ]
    try:
        await asyncio.gather(
            *(sell(c, sellers[i % len(sellers)]) for i, c in enumerate(clients[:ORDER_CLIENTS])),
            *(refund(c) for c in clients[ORDER_CLIENTS:]),
        )
    finally:
        for c in clients:
            await c.aclose()

    await asyncio.sleep(1.5)  # statistics are flushed at most once a second
    assert _deadlocks(database_url) == deadlocks_before
    assert len(statuses["order"]) > 20 and len(statuses["refund"]) > 10, statuses
    assert set(statuses["order"]) == {201}, sorted(set(statuses["order"]))
    assert set(statuses["refund"]) == {201}, sorted(set(statuses["refund"]))
    await verify_ok(client, admin_headers)


COMMIT_FAILS = """
CREATE SEQUENCE {name}_seq;
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('{name}_seq') <= {failures} THEN  -- a sequence is not rolled back with the transaction
    RAISE EXCEPTION 'injected failure at commit' USING ERRCODE = '{sqlstate}';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER {name} AFTER INSERT ON refund DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION {name}();
"""


@pytest.fixture
def commit_fails(database_url):
    """Make the commit of the next ``failures`` refund transactions fail with ``sqlstate``; the
    number of commits tried is the sequence's value."""
    conn = psycopg.connect(_plain(database_url), autocommit=True)
    name = f"test_commit_fails_{os.getpid()}"

    def install(failures: int, sqlstate: str) -> None:
        conn.execute(COMMIT_FAILS.format(name=name, failures=failures, sqlstate=sqlstate))

    def tries() -> int:
        return conn.execute(f"SELECT last_value FROM {name}_seq").fetchone()[0]

    try:
        yield install, tries
    finally:
        conn.execute(
            f"DROP TRIGGER IF EXISTS {name} ON refund; DROP FUNCTION IF EXISTS {name}(); "
            f"DROP SEQUENCE IF EXISTS {name}_seq"
        )
        conn.close()


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])  # deadlock detected, serialization failure
async def test_a_unit_of_work_aborted_at_commit_is_retried_whole(
    client, admin_headers, chain, commit_fails, sqlstate
):
    install, tries = commit_fails
    order = await place(client, chain[3], "100.00")
    install(ATTEMPTS - 1, sqlstate)
    resp = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"external_id": "r1", "amount": "40.00"},
        headers=admin_headers,
    )
    assert resp.status_code == 201, resp.text
    assert tries() == ATTEMPTS  # the handler ran again each time; the last commit went through
    assert resp.json()["order"]["refunded_amount"] == "40.00"
    again = await client.get(f"/api/v1/orders/{order['id']}", headers=admin_headers)
    assert again.json()["refunded_amount"] == "40.00" and len(again.json()["refunds"]) == 1
    await verify_ok(client, admin_headers)


async def test_retries_are_bounded_then_503(client, admin_headers, chain, commit_fails):
    install, tries = commit_fails
    order = await place(client, chain[3], "100.00")
    install(ATTEMPTS + 5, "40P01")
    resp = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"external_id": "r1", "amount": "40.00"},
        headers=admin_headers,
    )
    assert resp.status_code == 503 and resp.json()["code"] == "database-unavailable"
    assert resp.headers["retry-after"] == "1"
    assert tries() == ATTEMPTS
    again = await client.get(f"/api/v1/orders/{order['id']}", headers=admin_headers)
    assert again.json()["refunded_amount"] == "0.00"
