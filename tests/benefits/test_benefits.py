"""Benefits: derived from rank + catalogue at read time (the order that upgrades shows them),
explained, quoted; a violation hold suspends them, a maintenance hold does not; the catalogue
and the rank ladder are versioned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.points.service import grant_monthly
from tests.benefits.helpers import maintenance_hold, manual_hold, points_of
from tests.factories import auth, create_plan
from tests.orders.helpers import place, refund


def _codes(body):
    return {i["code"]: i for i in body["items"]}


async def test_default_catalogue_follows_seed_004(client, admin_headers):
    resp = await client.get("/api/v1/benefit-catalogues", headers=admin_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["active_version"] == 1
    tiers = {t["rank"]: t for t in body["items"][0]["tiers"]}
    assert [tiers[r]["discount_bps"] for r in ("member", "silver", "gold", "platinum")] == [
        0,
        1000,
        1500,
        2000,
    ]
    assert (
        tiers["silver"]["monthly_points"] > 0
        and tiers["platinum"]["monthly_points"] > tiers["gold"]["monthly_points"]
    )
    assert "free_shipping" in tiers["gold"]["flags"] and "priority_service" in tiers["platinum"]["flags"]


async def test_upgrade_benefits_are_in_the_response_of_the_order_that_caused_it(client, chain):
    *_, c = chain
    before = (await client.get("/api/v1/me/benefits", headers=auth(c))).json()
    assert before["rank"] == "member" and "discount" not in _codes(before)
    order = await place(client, c, "1000.00")  # crosses silver's 1,000.00
    assert order["rank_changes"] == [{"distributor_id": c["id"], "from": "member", "to": "silver"}]
    seller = order["seller_benefits"]
    assert seller["rank"] == "silver"
    assert (
        _codes(seller)["discount"]["value"]["discount_bps"] == 1000
        and _codes(seller)["discount"]["in_effect"]
    )
    # the order earned points at the new rank (1 point per 1.00)
    assert {"distributor_id": c["id"], "source": "order", "points": 1000} in order["points_earned"]
    after = (await client.get("/api/v1/me/benefits", headers=auth(c))).json()
    assert after["rank"] == "silver" and _codes(after)["monthly_points"]["in_effect"]
    quote = (
        await client.get("/api/v1/me/benefits/quote?category=shoes&amount=200.00", headers=auth(c))
    ).json()
    assert (quote["discount"], quote["member_price"], quote["discount_bps"]) == ("20.00", "180.00", 1000)
    plain = await place(client, c, "50.00")
    assert "seller_benefits" not in plain and "rank_changes" not in plain  # only when ranks changed


async def test_explain_covers_rank_missing_threshold_and_holds(client, chain, make_key, sessionmaker):
    *_, b, c = chain
    await place(client, c, "400.00")
    missing = (await client.get("/api/v1/me/benefits/discount/explain", headers=auth(c))).json()
    assert missing["in_effect"] is False and missing["granted_from_rank"] == "silver"
    assert missing["missing"]["personal_needed"] == "600.00"
    assert any("600.00 own" in r for r in missing["reasons"])
    await place(client, c, "600.00")
    granted = (await client.get("/api/v1/me/benefits/discount/explain", headers=auth(c))).json()
    assert granted["in_effect"] and granted["rank"] == "silver" and granted["catalogue_version"] == 1
    assert "since" in granted["reasons"][0]
    # a maintenance hold does not suspend, a violation hold does
    await maintenance_hold(sessionmaker, c)
    during = (await client.get("/api/v1/me/benefits/discount/explain", headers=auth(c))).json()
    assert during["in_effect"] and during["not_suspending"][0]["reason"] == "maintenance"
    hold_id = await manual_hold(client, make_key, c)
    held = (await client.get("/api/v1/me/benefits/discount/explain", headers=auth(c))).json()
    assert not held["in_effect"] and held["suspended_by"][0]["id"] == hold_id
    mine = (await client.get("/api/v1/me/benefits", headers=auth(c))).json()
    assert mine["suspended"] and not _codes(mine)["discount"]["in_effect"]
    assert _codes(mine)["discount"]["suspended_by"]["id"] == hold_id
    quote = (await client.get("/api/v1/me/benefits/quote?amount=100.00", headers=auth(c))).json()
    assert quote["member_price"] == "100.00" and not quote["in_effect"]
    # a flag no rank below gold has, and an unknown code
    gold = (await client.get("/api/v1/me/benefits/free_shipping/explain", headers=auth(c))).json()
    assert gold["granted_from_rank"] == "gold" and gold["missing"]["rank"] == "gold"
    unknown = await client.get("/api/v1/me/benefits/teleport/explain", headers=auth(c))
    assert unknown.status_code == 404 and unknown.json()["code"] == "benefit-not-found"


async def test_violation_hold_suspends_points_earning_maintenance_does_not(
    client, admin_headers, chain, make_key, sessionmaker, settings
):
    _, a, b, c = chain
    for d in (a, b, c):
        await client.post(
            f"/api/v1/distributors/{d['id']}/rank",
            headers=admin_headers,
            json={"rank": "silver", "reason": "test"},
        )
    await maintenance_hold(sessionmaker, c)
    await manual_hold(client, make_key, b)
    async with sessionmaker() as s:
        granted = await grant_monthly(s, settings=settings, period="2026-12")
        await s.commit()
    # a (no hold) and c (maintenance only) get the silver grant; b (violation hold) does not
    assert granted["members"] == 2
    assert (await points_of(sessionmaker, c))[0] == 100 and (await points_of(sessionmaker, b))[0] == 0
    # referral points: b's recruit c sells, but b is held
    async with sessionmaker() as s:
        await s.execute(text("UPDATE hold SET lifted_at = now() WHERE reason = 'maintenance'"))
        await s.commit()
    order = await place(client, c, "10.00")
    assert order["points_earned"] == [{"distributor_id": c["id"], "source": "order", "points": 10}]


async def test_catalogue_is_versioned_and_effective_dated(client, admin_headers, chain):
    *_, c = chain
    tiers = [
        {"rank": r, "discount_bps": bps, "monthly_points": 0, "earn_rate_bps": 20000, "flags": ["x_flag"]}
        for r, bps in (("member", 500), ("silver", 1000), ("gold", 1500), ("platinum", 2000))
    ]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    resp = await client.post(
        "/api/v1/benefit-catalogues",
        headers=admin_headers,
        json={"name": "v2 later", "tiers": tiers, "effective_from": later},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["version"] == 2
    body = (await client.get("/api/v1/benefit-catalogues", headers=admin_headers)).json()
    assert body["active_version"] == 1 and [i["version"] for i in body["items"]] == [2, 1]
    now = await client.post(
        "/api/v1/benefit-catalogues", headers=admin_headers, json={"name": "v3", "tiers": tiers}
    )
    assert now.json()["version"] == 3
    mine = (await client.get("/api/v1/me/benefits", headers=auth(c))).json()
    assert mine["catalogue_version"] == 3 and _codes(mine)["discount"]["value"]["discount_bps"] == 500
    order = await place(client, c, "10.00")
    assert {"distributor_id": c["id"], "source": "order", "points": 20} in order[
        "points_earned"
    ]  # 2 per 1.00
    bad = await client.post(
        "/api/v1/benefit-catalogues", headers=admin_headers, json={"name": "x", "tiers": tiers[:2]}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "benefit-catalogue-invalid"
    past = await client.post(
        "/api/v1/benefit-catalogues",
        headers=admin_headers,
        json={"name": "x", "tiers": tiers, "effective_from": "2020-01-01T00:00:00Z"},
    )
    assert past.status_code == 422
    denied = await client.post(
        "/api/v1/benefit-catalogues", headers=auth(c), json={"name": "x", "tiers": tiers}
    )
    assert denied.status_code == 403
    audit = await client.get("/api/v1/benefit-catalogues", headers=auth(c))
    assert audit.status_code == 403


async def test_rank_ladder_is_versioned_through_the_api(client, admin_headers, chain, session):
    *_, c = chain
    body = (await client.get("/api/v1/rank-ladders", headers=admin_headers)).json()
    assert body["active_version"] == 0 and body["items"][-1]["version"] == 0
    steps = [
        {"rank": "member", "min_personal": "0.00"},
        {"rank": "silver", "min_personal": "50.00"},
        {"rank": "gold", "min_personal": "100.00", "min_team": "0.00"},
        {"rank": "platinum", "min_personal": "100000.00", "min_team": "100000.00"},
    ]
    resp = await client.post(
        "/api/v1/rank-ladders",
        headers=admin_headers,
        json={"name": "easier", "steps": steps, "period_days": 30},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["version"] == 1
    order = await place(client, c, "120.00")  # gold under version 1 (the default ladder: still member)
    assert order["rank_changes"] == [{"distributor_id": c["id"], "from": "member", "to": "gold"}]
    ladder = (await client.get("/api/v1/ranks")).json()
    assert ladder["ladder_version"] == 1 and ladder["period_days"] == 30
    audit = (await session.execute(text("SELECT after FROM audit_log WHERE action = 'rank.changed'"))).one()
    assert audit.after["ladder_version"] == 1
    bad = await client.post(
        "/api/v1/rank-ladders", headers=admin_headers, json={"name": "bad", "steps": list(reversed(steps))}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "rank-ladder-invalid"


async def test_admin_rank_correction_is_audited_and_instant(client, admin_headers, chain, session):
    *_, c = chain
    resp = await client.post(
        f"/api/v1/distributors/{c['id']}/rank",
        headers=admin_headers,
        json={"rank": "gold", "reason": "migrated from the old system"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["previous_rank"] == "member"
    mine = (await client.get("/api/v1/me/benefits", headers=auth(c))).json()
    assert mine["rank"] == "gold" and "free_shipping" in _codes(mine)
    audit = (
        await session.execute(text("SELECT before, after FROM audit_log WHERE action = 'rank.corrected'"))
    ).one()
    assert audit.before == {"rank": "member"} and audit.after["reason"] == "migrated from the old system"
    denied = await client.post(
        f"/api/v1/distributors/{c['id']}/rank",
        headers=auth(c),
        json={"rank": "platinum", "reason": "because"},
    )
    assert denied.status_code == 403


async def test_a_refund_below_the_threshold_warns_before_the_downgrade(client, chain):
    *_, c = chain
    order = await place(client, c, "1000.00")
    assert order["rank_changes"][0]["to"] == "silver"
    await refund(client, order, "100.00", auth(c))
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(c))).json()
    warning = next(i for i in inbox["items"] if i["kind"] == "rank_refund_warning")
    assert "100.00 personal" in warning["body"]
    # still silver until the evaluation; the benefits still apply
    mine = (await client.get("/api/v1/me/benefits", headers=auth(c))).json()
    assert mine["rank"] == "silver"


async def test_qualification_skips_unqualified_levels_and_explains(client, admin_headers, chain, session):
    root, a, b, c = chain
    plan = await create_plan(
        client,
        admin_headers,
        name="qualified",
        qualifications=[
            {"level": 2, "min_own_sales": "300.00", "period_days": 30},
            {"level": 3, "min_rank": "silver"},
        ],
    )
    assert plan["qualifications"][0] == {
        "level": 2,
        "min_own_sales": "300.00",
        "period_days": 30,
        "min_rank": None,
    }
    await place(client, b, "120.00")  # b's own sales: 120.00 of the 300.00 level 2 needs
    order = await place(client, c, "100.00")
    assert [cm["level"] for cm in order["commissions"]] == [1]
    view = (await client.get(f"/api/v1/orders/{order['id']}", headers=auth(c))).json()
    levels = {lv["level"]: lv for lv in view["attribution"]["levels"]}
    assert levels[2]["note"] == "not qualified: level 2 needs 300.00 own sales in 30 days; 120.00"
    assert levels[2]["beneficiary_id"] == b["id"] and levels[2]["qualification"]["own_sales"] == "120.00"
    assert levels[3]["note"] == "not qualified: level 3 needs rank silver or above; member"
    skips = (
        await session.execute(
            text(
                "SELECT level, own_sales, min_own_sales FROM commission_skip "
                "WHERE order_id = :o ORDER BY level"
            ),
            {"o": order["id"]},
        )
    ).all()
    assert [tuple(s) for s in skips] == [(2, 12000, 30000), (3, 0, 0)]
    # b sells enough, a is made silver: both levels pay, and explain shows the check passed
    await place(client, b, "200.00")
    await client.post(
        f"/api/v1/distributors/{a['id']}/rank",
        headers=admin_headers,
        json={"rank": "silver", "reason": "test qualification"},
    )
    paid = await place(client, c, "100.00")
    assert [cm["level"] for cm in paid["commissions"]] == [1, 2, 3]
    level2 = paid["commissions"][1]["id"]
    explain = (await client.get(f"/api/v1/commissions/{level2}/explain", headers=admin_headers)).json()
    check = next(x for x in explain["exclusions_checked"] if x["check"] == "qualification")
    assert check["passed"] and check["own_sales"] == "320.00"
