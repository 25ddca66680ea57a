"""Points: balances equal their postings (ledger verify), the monthly grant pays once, racing
redemptions never overdraw, refunds reverse exactly and leave a debt for spent points, expiry
takes the oldest first with a notice before, adjustments are audited."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from distnet.kit.keys import Principal
from distnet.points import schemas
from distnet.points.errors import PointsInsufficient
from distnet.points.service import expire_due, grant_monthly, notify_expiring, redeem
from tests.benefits.helpers import points_of
from tests.factories import auth, register
from tests.orders.helpers import order_body, place, refund, verify_ok


async def _redeem(client, d, points, key, expect=201, **body):
    resp = await client.post(
        "/api/v1/me/points/redemptions",
        json={"points": points, **body},
        headers={**auth(d), "Idempotency-Key": key},
    )
    assert resp.status_code == expect, resp.text
    return resp.json()


async def test_earning_referral_and_balances_equal_postings(client, admin_headers, chain, sessionmaker):
    _, a, b, c = chain
    first = await place(client, c, "123.45")
    assert {"distributor_id": c["id"], "source": "order", "points": 123} in first["points_earned"]
    assert {"distributor_id": b["id"], "source": "referral", "points": 200} in first["points_earned"]
    second = await place(client, c, "10.00")  # the referral is paid once per recruit
    assert second["points_earned"] == [{"distributor_id": c["id"], "source": "order", "points": 10}]
    assert await points_of(sessionmaker, c) == (133, 0)
    mine = (await client.get("/api/v1/me/points", headers=auth(c))).json()
    assert mine["balance"] == 133 and mine["value"] == "1.33" and len(mine["lots"]) == 2
    await verify_ok(client, admin_headers)


async def test_monthly_grant_runs_twice_and_pays_once(client, admin_headers, chain, sessionmaker, settings):
    root, a, b, c = chain
    for d, rank in ((a, "gold"), (c, "silver")):
        resp = await client.post(
            f"/api/v1/distributors/{d['id']}/rank",
            headers=admin_headers,
            json={"rank": rank, "reason": "test"},
        )
        assert resp.status_code == 200, resp.text
    results = []
    for _ in range(2):
        async with sessionmaker() as s:
            results.append(await grant_monthly(s, settings=settings, period="2026-11"))
            await s.commit()
    assert (results[0]["members"], results[0]["points"]) == (2, 400)
    assert (results[1]["members"], results[1]["points"]) == (0, 0)
    assert (await points_of(sessionmaker, a))[0] == 300 and (await points_of(sessionmaker, root))[0] == 0
    async with sessionmaker() as s:  # the next month pays again
        assert (await grant_monthly(s, settings=settings, period="2026-12"))["members"] == 2
        await s.commit()
    await verify_ok(client, admin_headers)


async def test_redemption_is_idempotent_and_refused_without_balance(client, admin_headers, chain, session):
    *_, c = chain
    await place(client, c, "100.00")
    first = await _redeem(client, c, 30, "gift-1", reference="mug")
    again = await _redeem(client, c, 30, "gift-1", expect=200, reference="mug")
    assert again["id"] == first["id"] and again["balance_after"] == 70
    conflict = await _redeem(client, c, 31, "gift-1", expect=409)
    assert conflict["code"] == "idempotency-conflict"
    short = await _redeem(client, c, 71, "gift-2", expect=409)
    assert short["code"] == "points-insufficient" and short["balance"] == 70
    missing = await client.post("/api/v1/me/points/redemptions", json={"points": 1}, headers=auth(c))
    assert missing.status_code == 422
    await verify_ok(client, admin_headers)


async def test_racing_redemptions_never_overdraw(client, admin_headers, chain, sessionmaker):
    *_, c = chain
    await place(client, c, "100.00")
    me = Principal(key_id=None, name="test", roles=frozenset({"distributor"}), distributor_id=c["id"])

    async def attempt(i: int) -> str:
        async with sessionmaker() as s:
            try:
                await redeem(
                    s,
                    principal=me,
                    distributor_id=c["id"],
                    data=schemas.RedemptionCreate(points=40),
                    key=f"race-{i}",
                )
                await s.commit()
                return "ok"
            except PointsInsufficient:
                await s.rollback()
                return "refused"

    outcomes = await asyncio.gather(*(attempt(i) for i in range(6)))
    assert sorted(outcomes) == ["ok", "ok", "refused", "refused", "refused", "refused"]
    assert await points_of(sessionmaker, c) == (20, 0)
    await verify_ok(client, admin_headers)


async def test_refund_reverses_points_exactly_and_spent_points_become_debt(
    client, admin_headers, chain, sessionmaker
):
    *_, c = chain
    order = await place(client, c, "100.00")  # 100 points
    await _redeem(client, c, 80, "spend")
    await refund(client, order, "50.00", auth(c))  # 50 due: 20 left in the lot, 30 owed
    assert await points_of(sessionmaker, c) == (0, -30)
    later = await place(client, c, "40.00")  # 40 earned: 30 pay the debt first
    assert await points_of(sessionmaker, c) == (10, 0)
    assert later["points_earned"][0]["points"] == 40
    await refund(client, order, "50.00", auth(c))  # the rest: another 50, all owed
    assert await points_of(sessionmaker, c) == (10, -50)
    async with sessionmaker() as s:
        lot = (
            await s.execute(
                text(
                    "SELECT amount, remaining, reversed FROM points_lot WHERE order_id = :o "
                    "AND source = 'order'"
                ),
                {"o": order["id"]},
            )
        ).one()
    assert tuple(lot) == (100, 0, 100)
    mine = (await client.get("/api/v1/me/benefits", headers=auth(c))).json()
    assert (mine["points_balance"], mine["points_debt"]) == (10, 50)
    await verify_ok(client, admin_headers)


async def test_expiry_takes_the_oldest_points_first_with_a_notice(
    client, admin_headers, sessionmaker, settings
):
    root = await register(client, admin_headers, name="root")
    d = await register(client, sponsor=root, name="d")
    old = await place(client, d, "50.00")
    new = await place(client, d, "70.00")
    async with sessionmaker() as s:
        await s.execute(
            text(
                "UPDATE points_lot SET expires_at = now() + interval '10 days' WHERE order_id = :o "
                "AND source = 'order'"
            ),
            {"o": old["id"]},
        )
        await s.commit()
    await _redeem(client, d, 30, "first")  # from the older lot: 20 left there, 70 in the newer
    async with sessionmaker() as s:
        assert await notify_expiring(s, settings=settings) >= 1
        assert await notify_expiring(s, settings=settings) == 0  # once per member and expiry day
        await s.commit()
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()
    notice = next(i for i in inbox["items"] if i["kind"] == "points_expiring")
    assert "20" in notice["body"]
    async with sessionmaker() as s:
        await s.execute(
            text(
                "UPDATE points_lot SET expires_at = now() - interval '1 second' WHERE order_id = :o "
                "AND source = 'order'"
            ),
            {"o": old["id"]},
        )
        await s.commit()
    async with sessionmaker() as s:
        expired = await expire_due(s, settings=settings)
        await s.commit()
    assert (expired["lots"], expired["points"]) == (1, 20)
    async with sessionmaker() as s:
        again = await expire_due(s, settings=settings)
        await s.commit()
    assert again["lots"] == 0
    assert (await points_of(sessionmaker, d))[0] == 70
    lots = (await client.get("/api/v1/me/points", headers=auth(d))).json()["lots"]
    assert [(lot["source_ref"], lot["remaining"]) for lot in lots] == [(str(new["id"]), 70)]
    await verify_ok(client, admin_headers)


async def test_admin_adjustment_with_reason_is_audited(client, admin_headers, chain, session):
    *_, c = chain
    add = await client.post(
        f"/api/v1/distributors/{c['id']}/points/adjustments",
        headers=admin_headers,
        json={"points": 500, "reason": "goodwill after a late delivery"},
    )
    assert add.status_code == 201, add.text
    assert add.json()["balance_after"] == 500
    take = await client.post(
        f"/api/v1/distributors/{c['id']}/points/adjustments",
        headers=admin_headers,
        json={"points": -200, "reason": "duplicate grant"},
    )
    assert take.status_code == 201 and take.json()["balance_after"] == 300
    too_much = await client.post(
        f"/api/v1/distributors/{c['id']}/points/adjustments",
        headers=admin_headers,
        json={"points": -301, "reason": "too much"},
    )
    assert too_much.status_code == 409
    denied = await client.post(
        f"/api/v1/distributors/{c['id']}/points/adjustments",
        headers=auth(c),
        json={"points": 5, "reason": "mine"},
    )
    assert denied.status_code == 403
    audits = (
        await session.execute(
            text("SELECT after FROM audit_log WHERE action = 'points.adjusted' ORDER BY id")
        )
    ).all()
    assert [a.after["points"] for a in audits] == [500, -200]
    await verify_ok(client, admin_headers)


async def test_points_reports_json_csv_xlsx(client, admin_headers, chain, sessionmaker, settings):
    *_, c = chain
    await place(client, c, "100.00")
    await _redeem(client, c, 40, "r1")
    liability = (await client.get("/api/v1/reports/points-liability", headers=admin_headers)).json()
    assert liability["summary"]["outstanding points"] == 260  # 100 - 40 + the sponsor's 200 referral
    assert liability["summary"]["value"] == "2.60"
    monthly = (await client.get("/api/v1/reports/points-by-month", headers=admin_headers)).json()
    assert monthly["items"][0]["earned"] == 300 and monthly["items"][0]["redeemed"] == 40
    per_rank = (await client.get("/api/v1/reports/benefits-by-rank", headers=admin_headers)).json()
    assert per_rank["items"][0]["rank"] == "member" and per_rank["items"][0]["members"] == 4
    csv = await client.get("/api/v1/reports/points-liability?format=csv", headers=admin_headers)
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("source,lots")
    xlsx = await client.get("/api/v1/reports/benefits-by-rank?format=xlsx", headers=admin_headers)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    denied = await client.get("/api/v1/reports/points-liability", headers=auth(c))
    assert denied.status_code == 403


async def _points_written(session, order_id: int, ref_type: str) -> tuple[list[tuple], list[tuple]]:
    """The order's lots (source, member, points) and its points transaction's postings (member,
    account kind, amount), found by the transaction's reference."""
    lots = (
        await session.execute(
            text(
                "SELECT source, distributor_id, amount, remaining, netted FROM points_lot WHERE order_id = :o ORDER BY id"
            ),
            {"o": order_id},
        )
    ).all()
    postings = (
        await session.execute(
            text(
                """
                SELECT a.distributor_id, a.kind, p.amount FROM ledger_transaction t
                  JOIN ledger_posting p ON p.transaction_id = t.id JOIN ledger_account a ON a.id = p.account_id
                 WHERE t.kind = 'points.earned' AND t.ref_type = :rt AND t.ref_id = :o AND a.currency = 'PTS'
                 ORDER BY a.distributor_id NULLS LAST, a.kind
                """
            ),
            {"rt": ref_type, "o": str(order_id)},
        )
    ).all()
    return [tuple(r) for r in lots], [tuple(r) for r in postings]


async def test_a_single_order_writes_the_points_a_batch_order_does(client, admin_headers, chain, session):
    """A single order earns its points in the statement that writes the order (orders.repository
    .SINGLE, issue 19); a batch earns them in a statement of its own (points.earn_for_orders).
    Each recruit's first order earns the seller's points and the sponsor's referral: the same lots,
    and a points transaction of its own with the same postings, either way."""
    _, a, b, c = chain
    single = await place(client, c, "123.45")  # c's first sale: c earns, b (c's sponsor) gets the referral
    resp = await client.post(
        "/api/v1/orders/batch", json={"orders": [order_body(b, "123.45")]}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.text
    (item,) = resp.json()["items"]
    lots_single, posted_single = await _points_written(session, single["id"], "order_points")
    lots_batch, posted_batch = await _points_written(session, item["order"]["id"], "order_batch_points")

    def relative(rows: list[tuple], column: int, seller: int, sponsor: int) -> list[tuple]:
        """The rows with the member in ``column`` named by its part in the order."""
        part = {seller: "seller", sponsor: "sponsor", None: "platform"}
        return sorted(r[:column] + (part[r[column]],) + r[column + 1 :] for r in rows)

    assert sorted(lots_single) == [("order", c["id"], 123, 123, 0), ("referral", b["id"], 200, 200, 0)]
    assert relative(lots_single, 1, c["id"], b["id"]) == relative(lots_batch, 1, b["id"], a["id"])
    assert posted_single == [
        (b["id"], "points", 200),
        (c["id"], "points", 123),
        (None, "points_issued", -323),
    ]
    assert relative(posted_single, 0, c["id"], b["id"]) == relative(posted_batch, 0, b["id"], a["id"])
    await verify_ok(client, admin_headers)


async def test_a_refund_takes_back_the_referral_once_the_first_sale_no_longer_qualifies(
    client, admin_headers, chain, sessionmaker
):
    """The referral pays a sponsor for a recruit's first qualifying sale (the catalogue's
    referral_min_order): a refund that leaves the sale qualifying takes none of it back; one that
    takes it below the minimum takes all of it, from what the lot still holds, the spent rest as
    the sponsor's points debt, in the refund's points transaction."""
    _, a, b, c = chain
    tiers = [
        {"rank": r, "discount_bps": 0, "monthly_points": 0, "earn_rate_bps": 10000, "referral_points": 200}
        for r in ("member", "silver", "gold", "platinum")
    ]
    resp = await client.post(
        "/api/v1/benefit-catalogues",
        headers=admin_headers,
        json={"name": "referral from 100.00", "tiers": tiers, "referral_min_order": "100.00"},
    )
    assert resp.status_code == 201, resp.text
    order = await place(client, c, "150.00")  # qualifies: b gets 200
    assert {"distributor_id": b["id"], "source": "referral", "points": 200} in order["points_earned"]
    await _redeem(client, b, 150, "spend-referral")  # 50 left in b's referral lot
    await refund(client, order, "40.00", auth(c))  # 110.00 paid: still qualifies
    assert await points_of(sessionmaker, b) == (50, 0)
    await refund(client, order, "20.00", auth(c))  # 90.00 paid: below 100.00, the referral goes
    assert await points_of(sessionmaker, b) == (0, -150)
    assert await points_of(sessionmaker, c) == (90, 0)  # the seller's own points: in proportion
    await refund(client, order, "90.00", auth(c))  # the rest: nothing more of the referral
    assert await points_of(sessionmaker, b) == (0, -150)
    assert await points_of(sessionmaker, c) == (0, 0)
    async with sessionmaker() as s:
        lots = (
            await s.execute(
                text(
                    "SELECT source, amount, remaining, reversed FROM points_lot WHERE order_id = :o ORDER BY source"
                ),
                {"o": order["id"]},
            )
        ).all()
        assert [tuple(r) for r in lots] == [("order", 150, 0, 150), ("referral", 200, 0, 200)]
        # the referral went back in the second refund's points transaction, with the seller's share
        second = (
            await s.execute(
                text(
                    """
                    SELECT a.distributor_id, a.kind, p.amount FROM ledger_transaction t
                      JOIN ledger_posting p ON p.transaction_id = t.id JOIN ledger_account a ON a.id = p.account_id
                     WHERE t.kind = 'points.reversed' AND t.ref_type = 'refund'
                       AND t.ref_id = (SELECT id::text FROM refund WHERE order_id = :o ORDER BY id OFFSET 1 LIMIT 1)
                     ORDER BY a.distributor_id NULLS LAST, a.kind, p.amount
                    """
                ),
                {"o": order["id"]},
            )
        ).all()
        assert [tuple(r) for r in second] == [
            (b["id"], "points", -50),
            (b["id"], "points_owed", -150),
            (c["id"], "points", -20),
            (None, "points_issued", 20),
            (None, "points_issued", 200),
        ]
    await verify_ok(client, admin_headers)


async def test_a_full_refund_takes_back_a_referral_with_no_minimum(
    client, admin_headers, chain, sessionmaker
):
    """With the default catalogue (referral minimum 0.00) any first sale qualifies; a sale refunded
    in full is no sale, and its referral goes back whole."""
    _, a, b, c = chain
    order = await place(client, c, "10.00")
    assert {"distributor_id": b["id"], "source": "referral", "points": 200} in order["points_earned"]
    await refund(client, order, "9.99", auth(c))
    assert await points_of(sessionmaker, b) == (200, 0)
    await refund(client, order, "0.01", auth(c))
    assert await points_of(sessionmaker, b) == (0, 0) and await points_of(sessionmaker, c) == (0, 0)
    await verify_ok(client, admin_headers)
