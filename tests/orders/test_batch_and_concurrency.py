"""Batches (per-order results, set-based attribution), concurrency against real PostgreSQL
(duplicate submissions in parallel, racing refunds), reversals of available and paid money."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import text

from distnet.kit.auth import SYSTEM
from distnet.ledger.service import Posting, post
from distnet.orders import service as orders
from distnet.orders.schemas import OrderCreate, RefundCreate
from tests.factories import auth, register
from tests.orders.helpers import balances, order_body, place, refund, verify_ok


async def test_batch_results_in_order(client, admin_headers, chain, session):
    root, a, b, c = chain
    existing = await place(client, c, "10.00", external_id="dup-1")
    good = [order_body(c, f"{i + 1}.00") for i in range(5)]
    batch = [
        *good,
        {"external_id": "dup-1", "card_number": c["card"]["number"], "amount": "10.00"},  # replay
        {"external_id": "dup-1", "card_number": c["card"]["number"], "amount": "11.00"},  # conflict
        {"external_id": "bad", "card_number": c["card"]["number"], "amount": "1.001"},
        {"external_id": "bad2", "card_number": "nope", "amount": "1.00"},
        {"external_id": 5},
        "not an object",
        {**good[0]},  # duplicate inside the batch: a replay of the first
    ]
    resp = await client.post("/api/v1/orders/batch", json={"orders": batch}, headers=admin_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    statuses = [(r["index"], r["status"], r["status_code"]) for r in body["items"]]
    assert statuses == [
        (0, "created", 201),
        (1, "created", 201),
        (2, "created", 201),
        (3, "created", 201),
        (4, "created", 201),
        (5, "replayed", 200),
        (6, "error", 409),
        (7, "error", 422),
        (8, "error", 404),
        (9, "error", 422),
        (10, "error", 422),
        (11, "replayed", 200),
    ]
    assert body["items"][5]["order"]["id"] == existing["id"]
    assert body["items"][11]["order"]["id"] == body["items"][0]["order"]["id"]
    assert body["items"][7]["error"]["errors"][0]["field"] == "amount"
    assert body["created"] == 5 and body["replayed"] == 2 and body["error"] == 5
    # 1+2+3+4+5 = 15.00 at 10%/3%/1%
    assert body["commission_amount"] == "2.10"
    assert [x["amount"] for x in body["items"][0]["order"]["commissions"]] == ["0.10", "0.03", "0.01"]
    assert (await balances(client, c))["pending"] == "2.50"  # 1.00 from the first order + 1.50
    # batch postings: one aggregated transaction, commission_id null
    kinds = (
        await session.execute(
            text(
                "SELECT t.ref_type, count(p.*) AS n, count(p.commission_id) AS with_id FROM ledger_transaction t "
                "JOIN ledger_posting p ON p.transaction_id = t.id WHERE t.kind = 'commission.accrued' GROUP BY t.id, t.ref_type "
                "ORDER BY t.id"
            )
        )
    ).all()
    assert [(k.ref_type, k.n, k.with_id) for k in kinds] == [("order", 6, 6), ("order_batch", 4, 0)]
    await verify_ok(client, admin_headers)
    # the whole batch again: everything replays, nothing new
    again = (await client.post("/api/v1/orders/batch", json={"orders": good}, headers=admin_headers)).json()
    assert [r["status"] for r in again["items"]] == ["replayed"] * 5
    # a created answer is built from the rows just written, a replayed one is read back: the same
    # body, and what GET returns (less the refunds and the per-level explanation)
    assert [r["order"] for r in again["items"]] == [r["order"] for r in body["items"][:5]]
    for item in body["items"][:5] + body["items"][11:]:
        read = (await client.get(f"/api/v1/orders/{item['order']['id']}", headers=admin_headers)).json()
        read.pop("attribution"), read.pop("refunds")
        assert item["order"] == read


async def test_batch_limits_and_roles(client, admin_headers, chain):
    c = chain[-1]
    resp = await client.post("/api/v1/orders/batch", json={"orders": [order_body(c)]}, headers=auth(c))
    assert resp.status_code == 403
    for bad in ({"orders": []}, {"orders": [order_body(c)] * 1001}, {"orders": "x"}, {}):
        resp = await client.post("/api/v1/orders/batch", json=bad, headers=admin_headers)
        assert resp.status_code == 422, bad


async def test_batch_refuses_held_and_frozen_cards(client, admin_headers, chain, session):
    root, a, b, c = chain
    card_id = await session.scalar(text("SELECT id FROM card WHERE distributor_id = :d"), {"d": b["id"]})
    await session.execute(
        text(
            "INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key) "
            "VALUES (:d, :c, 'order_brushing', 'actor', 'x')"
        ),
        {"d": b["id"], "c": card_id},
    )
    await session.commit()
    await client.post(f"/api/v1/cards/{a['card']['number']}/loss-report", headers=auth(a))
    resp = await client.post(
        "/api/v1/orders/batch",
        json={"orders": [order_body(b), order_body(a), order_body(c)]},
        headers=admin_headers,
    )
    items = resp.json()["items"]
    assert [(r["status_code"], r.get("error", {}).get("code")) for r in items] == [
        (403, "card-suspended"),
        (409, "card-frozen"),
        (201, None),
    ]
    # c's order: b's level-2 commission is withheld
    level2 = next(x for x in items[2]["order"]["commissions"] if x["level"] == 2)
    assert level2["status"] == "withheld"
    await verify_ok(client, admin_headers)


async def test_concurrent_duplicates_create_one_order(client, admin_headers, chain, sessionmaker, settings):
    c = chain[-1]
    seller = type("P", (), {})  # noqa: F841 - readability
    principal = SYSTEM
    data = OrderCreate(**order_body(c, "42.00", external_id="same-key"))

    async def submit():
        async with sessionmaker() as s:
            status, view = await orders.create_order(s, settings, principal, data)
            await s.commit()
            return status, view.id

    results = await asyncio.gather(*[submit() for _ in range(12)])
    assert sorted(r[0] for r in results) == [200] * 11 + [201]
    assert len({r[1] for r in results}) == 1
    async with sessionmaker() as s:
        assert await s.scalar(text("SELECT count(*) FROM orders")) == 1
        assert await s.scalar(text("SELECT count(*) FROM commission")) == 3
    await verify_ok(client, admin_headers)


async def test_concurrent_batches_with_overlapping_orders(
    client, admin_headers, chain, sessionmaker, settings
):
    root, a, b, c = chain
    bodies = [order_body(random.choice([b, c]), f"{i + 1}.00") for i in range(60)]

    async def submit(subset):
        async with sessionmaker() as s:
            result = await orders.create_batch(s, settings, SYSTEM, subset)
            await s.commit()
            return result

    results = await asyncio.gather(
        *[submit(random.sample(bodies, 40)) for _ in range(6)], return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, [repr(e)[:600] for e in errors]
    created = sum(r.created for r in results)
    async with sessionmaker() as s:
        n = await s.scalar(text("SELECT count(*) FROM orders"))
    assert created == n <= 60
    assert all(r.error == 0 for r in results)
    await verify_ok(client, admin_headers)


async def test_racing_refunds_never_exceed_the_order(client, admin_headers, chain, sessionmaker, settings):
    c = chain[-1]
    order = await place(client, c, "100.00")

    async def submit(i):
        async with sessionmaker() as s:
            try:
                status, _ = await orders.refund(
                    s, settings, SYSTEM, order["id"], RefundCreate(external_id=f"race-{i}", amount="30.00")
                )
                await s.commit()
                return status
            except Exception as exc:  # the losers: refund larger than what remains
                await s.rollback()
                return getattr(exc, "status", 500)

    statuses = await asyncio.gather(*[submit(i) for i in range(8)])
    assert sorted(statuses) == [201, 201, 201] + [422] * 5
    view = (await client.get(f"/api/v1/orders/{order['id']}", headers=auth(c))).json()
    assert view["refunded_amount"] == "90.00" and len(view["refunds"]) == 3
    assert [x["reversed"] for x in view["commissions"]] == ["9.00", "2.70", "0.90"]
    await verify_ok(client, admin_headers)


async def _payout_item(session, distributor_id: int, amount: int, *, status: str, commission_id: int) -> None:
    """The payout run and item that a simulated payout stands for, with the commission it reserved:
    ledger verify checks that reserved and paid balances are backed by payout items and their
    commissions (the money equation)."""
    run_status = "completed" if status == "paid" else "exported"
    run_id = await session.scalar(
        text(
            "INSERT INTO payout_run (status, min_amount, cutoff, created_by, item_count, total_amount) "
            "VALUES (:s, 0, now(), 'test', 1, :a) RETURNING id"
        ),
        {"s": run_status, "a": amount},
    )
    item_id = await session.scalar(
        text(
            "INSERT INTO payout_item (run_id, distributor_id, amount, status) VALUES (:r, :d, :a, :s) RETURNING id"
        ),
        {"r": run_id, "d": distributor_id, "a": amount, "s": status},
    )
    await session.execute(
        text("INSERT INTO payout_item_commission (item_id, commission_id, amount) VALUES (:i, :c, :a)"),
        {"i": item_id, "c": commission_id, "a": amount},
    )
    await session.execute(
        text("UPDATE commission SET status = :s WHERE id = :c"), {"s": status, "c": commission_id}
    )


async def _settle(session, commission_id: int, *, paid: bool = False) -> None:
    """What settlement (and a payout) do to one commission, per ARCHITECTURE's postings table."""
    c = (
        await session.execute(
            text("SELECT beneficiary_id, amount - reversed AS net FROM commission WHERE id = :i"),
            {"i": commission_id},
        )
    ).one()
    await post(
        session,
        kind="settlement",
        postings=[
            Posting("pending", -c.net, c.beneficiary_id),
            Posting("available", c.net, c.beneficiary_id),
        ],
    )
    await session.execute(
        text("UPDATE commission SET status = 'available', available_at = hold_until WHERE id = :i"),
        {"i": commission_id},
    )
    if paid:
        await post(
            session,
            kind="payout",
            postings=[
                Posting("available", -c.net, c.beneficiary_id),
                Posting("paid", c.net, c.beneficiary_id),
            ],
        )
        await session.execute(
            text("UPDATE commission SET status = 'paid', paid_at = now() WHERE id = :i"), {"i": commission_id}
        )
        await _payout_item(session, c.beneficiary_id, c.net, status="paid", commission_id=commission_id)
    await session.commit()


async def test_reversal_of_available_and_paid_creates_debt(client, admin_headers, chain, session):
    root, a, b, c = chain
    order = await place(client, c, "100.00")
    by_level = {x["level"]: x for x in order["commissions"]}
    await _settle(session, by_level[1]["id"])  # c: 10.00 available
    await _settle(session, by_level[2]["id"], paid=True)  # b: 3.00 paid out
    # a payout item carries 4.00 of c's commission; 6.00 of it is still available
    await post(
        session,
        kind="payout",
        postings=[Posting("available", -400, c["id"]), Posting("reserved", 400, c["id"])],
    )
    await _payout_item(session, c["id"], 400, status="reserved", commission_id=by_level[1]["id"])
    await session.commit()
    await refund(client, order, "100.00", auth(c))
    bal_c = await balances(client, c)
    assert bal_c["available"] == "0.00" and bal_c["owed"] == "4.00"  # 6.00 from available, 4.00 owed
    bal_b = await balances(client, b)
    assert bal_b["owed"] == "3.00" and bal_b["paid"] == "3.00"
    assert (await balances(client, a))["pending"] == "0.00"
    debts = (
        await session.execute(
            text("SELECT payload FROM outbox_event WHERE topic = 'debt.created' ORDER BY seq")
        )
    ).all()
    assert sorted((d.payload["distributor_id"], d.payload["amount"]) for d in debts) == sorted(
        [(c["id"], "4.00"), (b["id"], "3.00")]
    )
    await verify_ok(client, admin_headers)


async def test_randomised_money_history_keeps_every_invariant(client, admin_headers, session):
    """Random orders across a random network, random partial/full refunds, a plan change and rank
    changes in between: after every step the ledger verifies."""
    rng = random.Random(20261123)
    root = await register(client, admin_headers, name="root")
    people = [root]
    for i in range(10):
        people.append(await register(client, sponsor=rng.choice(people), name=f"p{i}"))
    placed = []
    for step in range(40):
        action = rng.random()
        if action < 0.55 or not placed:
            seller = rng.choice(people)
            amount = f"{rng.randint(1, 50000) / 100:.2f}"
            placed.append(await place(client, seller, amount, headers=admin_headers))
        elif action < 0.9:
            o = rng.choice(placed)
            view = (await client.get(f"/api/v1/orders/{o['id']}", headers=admin_headers)).json()
            remaining = int(view["remaining_amount"].replace(".", ""))
            if remaining:
                part = remaining if rng.random() < 0.3 else rng.randint(1, remaining)
                await refund(client, o, f"{part // 100}.{part % 100:02d}", admin_headers)
        elif action < 0.95:
            d = rng.choice(people)
            await session.execute(
                text("UPDATE distributor SET rank = :r WHERE id = :d"),
                {"r": rng.choice(["member", "silver", "gold", "platinum"]), "d": d["id"]},
            )
            await session.commit()
        else:
            await session.execute(text("UPDATE commission_plan SET effective_from = effective_from"))
            await session.commit()
        if step % 10 == 9:
            await verify_ok(client, admin_headers)
    # refund everything that remains: every commission nets to 0, every pending balance is 0
    for o in placed:
        view = (await client.get(f"/api/v1/orders/{o['id']}", headers=admin_headers)).json()
        if view["remaining_amount"] != "0.00":
            await refund(client, o, view["remaining_amount"], admin_headers)
    await verify_ok(client, admin_headers)
    for d in people:
        assert (await balances(client, d))["pending"] == "0.00"


async def test_a_lone_surrogate_is_a_bad_body_not_an_error(client, admin_headers, chain, session):
    """A JSON escape of half a UTF-16 pair (``\\ud800``) cannot be stored (UTF-8 has no such
    character): the body is refused as a problem before any lookup, not a 500 from the database
    driver, and nothing is written."""
    body = b'{"orders": [{"external_id": "half-pair", "card_number": "1\\ud800", "amount": "1.00"}]}'
    answer = await client.post(
        "/api/v1/orders/batch", content=body, headers={**admin_headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    stored = await session.scalar(text("SELECT count(*) FROM orders WHERE external_id LIKE 'half-pair%'"))
    assert stored == 0
