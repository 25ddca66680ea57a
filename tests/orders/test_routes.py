"""POST /orders, batches, idempotency, card rules, refunds and their commission reversals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.factories import auth, register
from tests.orders.helpers import balances, order_body, place, refund, verify_ok


async def test_order_attributes_three_levels(client, admin_headers, chain):
    root, a, b, c = chain
    order = await place(client, c, "123.45")
    assert order["status"] == "completed"
    levels = {x["level"]: x for x in order["commissions"]}
    assert sorted(levels) == [1, 2, 3]
    assert [levels[k]["beneficiary_id"] for k in (1, 2, 3)] == [c["id"], b["id"], a["id"]]
    # default plan, member rank: 10% / 3% / 1%, floored to the cent
    assert [levels[k]["amount"] for k in (1, 2, 3)] == ["12.34", "3.70", "1.23"]
    assert [levels[k]["rate_bps"] for k in (1, 2, 3)] == [1000, 300, 100]
    assert all(x["status"] == "pending" and x["reversed"] == "0.00" for x in order["commissions"])
    assert (await balances(client, c))["pending"] == "12.34"
    assert (await balances(client, b))["pending"] == "3.70"
    assert (await balances(client, root))["pending"] == "0.00"
    await verify_ok(client, admin_headers)


async def test_created_answer_is_what_a_read_returns(client, admin_headers, chain):
    """The 201 body is built from the rows just written (no read back): it must equal GET, for an
    order with commissions, one placed in the past and one excluded below the minimum."""
    root, a, b, c = chain
    placed = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    for body in (
        order_body(c, "123.45"),
        order_body(
            c,
            "9.99",
            placed_at=placed,
            category="books",
            channel="app",
            buyer={"ref": "u1", "ip": "10.0.0.1"},
        ),
    ):
        created = await client.post("/api/v1/orders", json=body, headers=auth(c))
        assert created.status_code == 201, created.text
        read = (await client.get(f"/api/v1/orders/{created.json()['id']}", headers=auth(c))).json()
        read.pop("attribution")
        assert created.json() == read
        replay = await client.post("/api/v1/orders", json=body, headers=auth(c))
        assert replay.status_code == 200 and replay.json() == created.json()


async def test_order_events_and_fingerprints(client, admin_headers, chain, session):
    c = chain[-1]
    order = await place(
        client,
        c,
        "10.00",
        buyer={"ref": "buyer-1", "device_id": "D1", "ip": "1.2.3.4", "payment_fingerprint": "pay-1"},
    )
    row = (await session.execute(text("SELECT * FROM orders WHERE id = :i"), {"i": order["id"]})).one()
    assert row.buyer_ref_hash is not None and b"buyer-1" not in bytes(row.buyer_ref_hash)
    assert len(bytes(row.buyer_payment_hash)) == 16
    other = await place(client, c, "10.00", buyer={"ref": " BUYER-1 "})
    row2 = (
        await session.execute(text("SELECT buyer_ref_hash FROM orders WHERE id = :i"), {"i": other["id"]})
    ).one()
    assert bytes(row2.buyer_ref_hash) == bytes(row.buyer_ref_hash)
    events = (
        await session.execute(
            text("SELECT payload FROM outbox_event WHERE topic = 'order.created' ORDER BY seq")
        )
    ).all()
    assert events[0].payload["order_id"] == order["id"]
    assert events[0].payload["amount"] == "10.00" and events[0].payload["card_number"] == c["card"]["number"]
    assert events[0].payload["seller_id"] == c["id"]


async def test_idempotent_replay_and_conflict(client, admin_headers, chain, session):
    c = chain[-1]
    body = order_body(c, "50.00", placed_at="2026-01-02T03:04:05Z")
    first = await client.post("/api/v1/orders", json=body, headers=auth(c))
    assert first.status_code == 201
    again = await client.post("/api/v1/orders", json=body, headers=auth(c))
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["commissions"] == first.json()["commissions"]
    # "50" and "50.00" are the same amount: still a replay
    same = await client.post("/api/v1/orders", json={**body, "amount": "50"}, headers=auth(c))
    assert same.status_code == 200
    changed = await client.post("/api/v1/orders", json={**body, "amount": "51.00"}, headers=auth(c))
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency-conflict"
    n = await session.scalar(text("SELECT count(*) FROM orders"))
    assert n == 1
    assert await session.scalar(text("SELECT count(*) FROM commission")) == 3
    # another source with the same external id is another order
    other = await client.post("/api/v1/orders", json={**body, "source": "shop-2"}, headers=auth(c))
    assert other.status_code == 201


async def test_validation_names_the_field(client, admin_headers, chain):
    c = chain[-1]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    cases = [
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": 12}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"placed_at": future}, "placed_at"),
        ({"placed_at": "2026-01-01T00:00:00"}, "placed_at"),
        ({"external_id": "x" * 129}, "external_id"),
        ({"external_id": ""}, "external_id"),
        ({"category": "c" * 65}, "category"),
        ({"buyer": {"ref": "r" * 200}}, "buyer"),
        ({"unknown": 1}, "unknown"),
    ]
    for fields, field in cases:
        resp = await client.post("/api/v1/orders", json=order_body(c, **fields), headers=auth(c))
        assert resp.status_code == 422, (fields, resp.text)
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert any(field in e["field"] or field in e["message"] for e in problem["errors"]), (fields, problem)
    resp = await client.post("/api/v1/orders", content=b"{not json", headers=auth(c))
    assert resp.status_code == 400
    resp = await client.post("/api/v1/orders", json=[1, 2], headers=auth(c))
    assert resp.status_code in (400, 422)


async def test_sell_only_on_own_card(client, admin_headers, chain):
    root, a, b, c = chain
    resp = await client.post("/api/v1/orders", json=order_body(c), headers=auth(b))
    assert resp.status_code == 404
    assert resp.json()["code"] == "card-not-found"
    resp = await client.post(
        "/api/v1/orders", json={**order_body(c), "card_number": "0000000000000000"}, headers=admin_headers
    )
    assert resp.status_code == 404
    # admin may record a sale on anyone's card
    order = await place(client, c, "20.00", headers=admin_headers)
    assert order["seller_id"] == c["id"]
    resp = await client.post("/api/v1/orders", json=order_body(c), headers={})
    assert resp.status_code == 401


async def test_staff_roles_cannot_sell(client, admin_headers, chain, make_key):
    from tests.conftest import bearer

    c = chain[-1]
    for role in ("risk_reviewer", "finance", "finance_approver", "risk_admin"):
        resp = await client.post("/api/v1/orders", json=order_body(c), headers=bearer(await make_key(role)))
        assert resp.status_code == 403, role


async def _hold(session, distributor_id: int, reason: str, ends_at=None, started_at=None) -> int:
    card_id = await session.scalar(
        text("SELECT id FROM card WHERE distributor_id = :d AND cancelled_at IS NULL"), {"d": distributor_id}
    )
    hold_id = await session.scalar(
        text(
            """
            INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key, ends_at, started_at, appealable)
            VALUES (:d, :c, :r, 'actor', :k, :e, coalesce(CAST(:s AS timestamptz), now()), :app) RETURNING id
            """
        ),
        {
            "d": distributor_id,
            "c": card_id,
            "r": reason,
            "k": f"test-{reason}",
            "e": ends_at,
            "s": started_at,
            "app": reason != "maintenance",
        },
    )
    await session.commit()
    return hold_id


async def test_card_states_refuse_orders(client, admin_headers, chain, session):
    root, a, b, c = chain
    # maintenance only: 503 with Retry-After
    ends = datetime.now(UTC) + timedelta(minutes=10)
    await _hold(session, c["id"], "maintenance", ends_at=ends)
    resp = await client.post("/api/v1/orders", json=order_body(c), headers=auth(c))
    assert resp.status_code == 503
    assert resp.json()["code"] == "maintenance-in-progress"
    assert 500 <= int(resp.headers["retry-after"]) <= 600
    # a violation hold on top: 403 naming the hold
    hold_id = await _hold(session, c["id"], "order_brushing")
    resp = await client.post("/api/v1/orders", json=order_body(c), headers=auth(c))
    assert resp.status_code == 403
    assert resp.json()["code"] == "card-suspended"
    assert resp.json()["hold"]["id"] == hold_id and resp.json()["hold"]["reason"] == "order_brushing"
    # frozen card (loss report): 409
    resp = await client.post(f"/api/v1/cards/{b['card']['number']}/loss-report", headers=auth(b))
    assert resp.status_code == 200
    resp = await client.post("/api/v1/orders", json=order_body(b), headers=auth(b))
    assert resp.status_code == 409 and resp.json()["code"] == "card-frozen"
    # cancelled (replaced) card: 409, the new card sells
    resp = await client.post(f"/api/v1/cards/{a['card']['number']}/replacement", headers=auth(a))
    new_card = resp.json()["number"]
    resp = await client.post("/api/v1/orders", json=order_body(a), headers=auth(a))
    assert resp.status_code == 409 and resp.json()["code"] == "card-cancelled"
    ok = await client.post("/api/v1/orders", json={**order_body(a), "card_number": new_card}, headers=auth(a))
    assert ok.status_code == 201
    assert await session.scalar(text("SELECT count(*) FROM orders")) == 1


async def test_withheld_commission_for_held_beneficiary(client, admin_headers, chain, session):
    root, a, b, c = chain
    hold_id = await _hold(session, b["id"], "fake_promotion")
    order = await place(client, c, "100.00")
    levels = {x["level"]: x for x in order["commissions"]}
    assert levels[2]["status"] == "withheld" and levels[2]["withheld_hold_id"] == hold_id
    assert levels[1]["status"] == "pending" and levels[3]["status"] == "pending"
    bal = await balances(client, b)
    assert bal["withheld"] == "3.00" and bal["pending"] == "0.00"
    # a maintenance hold withholds nothing
    await _hold(session, a["id"], "maintenance", ends_at=datetime.now(UTC) + timedelta(hours=1))
    order = await place(client, c, "100.00")
    assert {x["level"]: x["status"] for x in order["commissions"]}[3] == "pending"
    await verify_ok(client, admin_headers)


async def test_closed_seller_is_refused(client, admin_headers, chain, session):
    c = chain[-1]
    await session.execute(text("UPDATE distributor SET status = 'closed' WHERE id = :d"), {"d": c["id"]})
    await session.commit()
    resp = await client.post("/api/v1/orders", json=order_body(c), headers=auth(c))
    assert resp.status_code == 409 and resp.json()["code"] == "distributor-closed"


async def test_partial_and_full_refunds_net_to_zero(client, admin_headers, chain, session):
    root, a, b, c = chain
    order = await place(client, c, "100.01")
    r1 = await refund(client, order, "33.33", auth(c))
    assert r1["order"]["status"] == "partially_refunded"
    assert r1["order"]["remaining_amount"] == "66.68"
    levels = {x["level"]: x for x in r1["order"]["commissions"]}
    # level 1: 10.00 commission; floor(1000 * 3333 / 10001) = 333
    assert levels[1]["amount"] == "10.00" and levels[1]["reversed"] == "3.33"
    r2 = await refund(client, order, "66.68", admin_headers)
    assert r2["order"]["status"] == "refunded"
    for x in r2["order"]["commissions"]:
        assert x["net_amount"] == "0.00" and x["reversed"] == x["amount"]
    for d in (a, b, c):
        assert (await balances(client, d))["pending"] == "0.00"
    await verify_ok(client, admin_headers)
    # nothing remains: another refund is a 409
    resp = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"external_id": "late", "amount": "0.01"},
        headers=auth(c),
    )
    assert resp.status_code == 409 and resp.json()["code"] == "order-fully-refunded"
    events = await session.scalar(text("SELECT count(*) FROM outbox_event WHERE topic = 'order.refunded'"))
    assert events == 2


async def test_refund_idempotency_and_bounds(client, admin_headers, chain):
    c = chain[-1]
    order = await place(client, c, "10.00")
    first = await refund(client, order, "4.00", auth(c), external_id="r-1")
    again = await refund(client, order, "4.00", auth(c), external_id="r-1", expect=200)
    assert again["id"] == first["id"] and again["order"]["refunded_amount"] == "4.00"
    resp = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"external_id": "r-1", "amount": "5.00"},
        headers=auth(c),
    )
    assert resp.status_code == 409 and resp.json()["code"] == "idempotency-conflict"
    resp = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"external_id": "r-2", "amount": "6.01"},
        headers=auth(c),
    )
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "amount"
    for bad in (
        {"external_id": "r-3", "amount": "0"},
        {"external_id": "r-3", "amount": "1.001"},
        {"external_id": "", "amount": "1.00"},
        {"amount": "1.00"},
    ):
        resp = await client.post(f"/api/v1/orders/{order['id']}/refunds", json=bad, headers=auth(c))
        assert resp.status_code == 422, bad
    resp = await client.post(
        "/api/v1/orders/999999/refunds", json={"external_id": "x", "amount": "1.00"}, headers=auth(c)
    )
    assert resp.status_code == 404


async def test_order_visibility(client, admin_headers, chain, make_key):
    from tests.conftest import bearer

    root, a, b, c = chain
    order = await place(client, c, "10.00")
    assert (await client.get(f"/api/v1/orders/{order['id']}", headers=auth(c))).status_code == 200
    # the sponsor earns on it but does not see the buyer's order
    assert (await client.get(f"/api/v1/orders/{order['id']}", headers=auth(b))).status_code == 404
    resp = await client.post(
        f"/api/v1/orders/{order['id']}/refunds", json={"external_id": "x", "amount": "1.00"}, headers=auth(b)
    )
    assert resp.status_code == 404
    staff = await client.get(f"/api/v1/orders/{order['id']}", headers=bearer(await make_key("risk_reviewer")))
    assert staff.status_code == 200
    body = staff.json()
    assert body["attribution"]["plan_version"] == 1
    assert [lv["note"] for lv in body["attribution"]["levels"]] == ["commission attributed"] * 3
    assert (await client.get("/api/v1/orders/0", headers=admin_headers)).status_code in (400, 404, 422)
    assert (await client.get("/api/v1/orders/abc", headers=admin_headers)).status_code in (400, 404, 422)


async def test_short_upline_explains_missing_levels(client, admin_headers):
    root = await register(client, admin_headers, name="root")
    child = await register(client, sponsor=root, name="child")
    order = await place(client, child, "10.00")
    assert [x["level"] for x in order["commissions"]] == [1, 2]
    view = (await client.get(f"/api/v1/orders/{order['id']}", headers=auth(child))).json()
    assert view["attribution"]["levels"][2]["note"] == "no distributor at this level of the upline"


async def test_a_lost_database_connection_is_a_503_and_the_next_order_goes_through(
    client, admin_headers, chain, settings, database_url, redis_url
):
    """The pool does not ping a connection before each request (a round trip per order): when
    PostgreSQL drops the pooled connections (restart, failover), the order that meets a dead one
    is answered 503 with Retry-After, nothing of it is stored, and the pool is renewed, so the
    retry succeeds. The same for a statement through SQLAlchemy's session (a read)."""
    import asyncio

    import psycopg
    from litestar.testing import AsyncTestClient

    from distnet.app import create_app

    # an app of its own, whose connections carry a name: only they are dropped
    named = database_url + ("&" if "?" in database_url else "?") + "application_name=dropped_503"
    app = create_app(settings, database_url=named, redis_url=redis_url)

    def drop_connections() -> int:
        with psycopg.connect(
            database_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
        ) as conn:
            return conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'dropped_503'"
            ).fetchone()[0]

    *_, c = chain
    async with AsyncTestClient(app=app) as own:
        await asyncio.gather(*(place(own, c, "10.00") for _ in range(3)))  # the pool now holds connections
        assert drop_connections() >= 1
        outcomes = []
        body = order_body(c, "20.00")
        for _ in range(2):  # the first meets a dead connection; the pool is then renewed
            resp = await own.post("/api/v1/orders", json=body, headers=auth(c))
            outcomes.append(resp.status_code)
            if resp.status_code == 503:
                assert resp.headers["Retry-After"] == "1"
                assert resp.json()["code"] == "database-unavailable"
        assert outcomes == [503, 201], outcomes
        order = resp.json()
        assert [x["level"] for x in order["commissions"]] == [1, 2, 3]
        # reads use the other pool (orders: kit/unit_of_work ONE_STATEMENT): it holds a connection now
        assert (await own.get(f"/api/v1/orders/{order['id']}", headers=auth(c))).status_code == 200
        assert drop_connections() >= 1
        first = await own.get(f"/api/v1/orders/{order['id']}", headers=auth(c))
        assert first.status_code == 503 and first.headers["Retry-After"] == "1", first.text
        assert (await own.get(f"/api/v1/orders/{order['id']}", headers=auth(c))).json()["id"] == order["id"]
    await verify_ok(client, admin_headers)
