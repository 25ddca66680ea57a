"""A single order is its lookup and one statement (orders.repository.SINGLE), each its own
transaction: no BEGIN, no COMMIT, and the rank upgrade it causes and its points at the new rank in
that same statement (the upgrades themselves are the evaluation's: tests/ranks). The first order on
an emptied database takes several statements, in one transaction it opens itself (kit.pg.begin)."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from distnet.kit import pg
from distnet.points import service as points
from distnet.ranks import service as ranks
from tests.factories import auth, make_tree
from tests.orders.helpers import order_body, place


def _no_second_statement(monkeypatch) -> None:
    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a single order ran a statement of its own for ranks or points")

    monkeypatch.setattr(ranks, "upgrade_after_orders", refused)
    monkeypatch.setattr(points, "earn_for_orders", refused)


def _count_statements(monkeypatch) -> list[tuple[str, psycopg.pq.TransactionStatus]]:
    """Each statement sent through kit.pg, with its connection's transaction status after it."""
    sent: list[tuple[str, psycopg.pq.TransactionStatus]] = []
    real = pg.fetch

    async def counted(session, clause, params):
        rows = await real(session, clause, params)
        _, driver = await pg._connection_of(session)
        sent.append((" ".join(str(clause).split())[:30], driver.pgconn.transaction_status))
        return rows

    monkeypatch.setattr(pg, "fetch", counted)
    return sent


async def test_an_order_is_its_lookup_and_one_statement(client, admin_headers, monkeypatch) -> None:
    root, a, b, c = await make_tree(client, admin_headers, 3)
    await place(client, root, "1.00")  # the first order of a database opens the plan and accounts
    await place(client, c, "1.00")  # c's key is known now (its lookup is cached)
    _no_second_statement(monkeypatch)
    sent = _count_statements(monkeypatch)
    small = await place(client, c, "100.00")
    assert "rank_changes" not in small and small["points_earned"][0]["points"] == 100
    assert len(sent) == 2, sent  # the lookup and the order's statement
    # each statement was its own transaction: none was left open for a COMMIT
    assert all(status == psycopg.pq.TransactionStatus.IDLE for _, status in sent), sent
    sent.clear()
    crossing = await place(client, c, "899.00")  # c's personal sales reach silver's 1,000.00
    assert crossing["rank_changes"] == [{"distributor_id": c["id"], "from": "member", "to": "silver"}]
    assert {"distributor_id": c["id"], "source": "order", "points": 899} in crossing["points_earned"]
    assert crossing["seller_benefits"]["rank"] == "silver"
    assert all(status == psycopg.pq.TransactionStatus.IDLE for _, status in sent), sent
    after = await place(client, c, "1.00")  # silver already: nothing left to move
    assert "rank_changes" not in after


async def test_an_upline_lifted_by_its_teams_order(client, admin_headers, session, monkeypatch) -> None:
    root, a, b, c = await make_tree(client, admin_headers, 3)
    await place(client, b, "3000.00")  # b: silver now, gold's personal sales reached, no team yet
    assert (await client.get("/api/v1/me", headers=auth(b))).json()["rank"] == "silver"
    _no_second_statement(monkeypatch)
    crossing = await place(client, c, "20000.00")  # b's team sales reach gold's 20,000.00
    moved = {ch["distributor_id"]: ch["to"] for ch in crossing["rank_changes"]}
    # c: silver (20,000.00 personal, no team); b: gold; a: team sales but no personal sales, member
    assert moved == {c["id"]: "silver", b["id"]: "gold"}
    assert (await client.get("/api/v1/me", headers=auth(b))).json()["rank"] == "gold"
    audit = (
        await session.execute(
            text(
                "SELECT subject_id, actor, after FROM audit_log WHERE action = 'rank.changed' "
                "AND subject_id = :b ORDER BY id"
            ),
            {"b": str(b["id"])},
        )
    ).all()
    assert [(r.actor, r.after["rank"], r.after["reason"]) for r in audit] == [
        ("system:ranks", "silver", "threshold_crossed"),
        ("system:ranks", "gold", "threshold_crossed"),
    ]
    events = (
        await session.execute(text("SELECT payload FROM outbox_event WHERE topic = 'rank.changed'"))
    ).scalars()
    assert {(e["distributor_id"], e["to"]) for e in events} == {
        (b["id"], "silver"),
        (c["id"], "silver"),
        (b["id"], "gold"),
    }


async def test_the_seller_earns_at_the_rank_its_own_order_reached(client, admin_headers, monkeypatch) -> None:
    root, a, b, c = await make_tree(client, admin_headers, 3)
    await place(client, c, "20000.00")  # b: 20,000.00 team sales, no personal sales: still member
    assert (await client.get("/api/v1/me", headers=auth(b))).json()["rank"] == "member"
    _no_second_statement(monkeypatch)
    crossing = await place(client, b, "3000.00")  # b's own sales reach gold's personal threshold
    assert crossing["rank_changes"] == [{"distributor_id": b["id"], "from": "member", "to": "gold"}]
    # earned in the same statement at gold's rate (1.2 points per 1.00), not member's (1 per 1.00)
    assert {"distributor_id": b["id"], "source": "order", "points": 3600} in crossing["points_earned"]


async def test_a_sponsor_lifted_by_a_recruits_first_sale_earns_its_referral_at_the_new_rank(
    client, admin_headers, monkeypatch
) -> None:
    root, a, b, c = await make_tree(client, admin_headers, 3)
    await place(client, a, "3000.00")  # a: gold's personal sales reached, no team yet
    await place(client, c, "17000.00")  # a's team: 17,000.00
    _no_second_statement(monkeypatch)
    first = await place(client, b, "3000.00")  # b's first sale: a's team reaches gold's 20,000.00
    assert {"distributor_id": a["id"], "from": "silver", "to": "gold"} in first["rank_changes"]
    # b's sponsor a earns the referral at gold's 300 points, not silver's 200
    assert {"distributor_id": a["id"], "source": "referral", "points": 300} in first["points_earned"]


async def test_the_first_order_of_a_database_is_one_transaction(
    client, app, admin_headers, session, monkeypatch
) -> None:
    root, a, b, c = await make_tree(client, admin_headers, 3)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died after the order's commissions")

    monkeypatch.setattr(ranks, "upgrade_after_orders", broken)  # runs after the insert and attribution
    async with AsyncTestClient(app=app) as own:  # without the contract check: this 500 is the test's
        resp = await own.post("/api/v1/orders", json=order_body(c, "10.00"), headers=auth(c))
    assert resp.status_code == 500
    written = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM commission), "
                "(SELECT count(*) FROM sales_delta)"
            )
        )
    ).one()
    assert tuple(written) == (0, 0, 0)  # nothing of it stayed
    monkeypatch.undo()
    order = await place(client, c, "10.00")
    assert [x["level"] for x in order["commissions"]] == [1, 2, 3]
