"""Plans (versions, effective dates, cap), exclusions, commission lists and explanations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.conftest import bearer
from tests.factories import auth
from tests.orders.helpers import place, verify_ok

RANKS = ("member", "silver", "gold", "platinum")


def plan_body(max_levels: int = 2, l1: int = 500, **fields):
    rates = [
        {"level": lv, "rank": rk, "rate_bps": l1 if lv == 1 else 100}
        for lv in range(1, max_levels + 1)
        for rk in RANKS
    ]
    return {"name": "v2", "max_levels": max_levels, "hold_days": 7, "rates": rates, **fields}


async def test_plan_versions_apply_by_placed_at(client, admin_headers, chain):
    root, a, b, c = chain
    resp = await client.post(
        "/api/v1/commission-plans",
        json=plan_body(excluded_categories=["gift"], min_order_amount="5.00"),
        headers=admin_headers,
    )
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["version"] == 2 and plan["max_levels"] == 2
    new = await place(client, c, "100.00")
    assert [(x["level"], x["amount"], x["plan_version"]) for x in new["commissions"]] == [
        (1, "5.00", 2),
        (2, "1.00", 2),
    ]
    hold_until = datetime.fromisoformat(new["commissions"][0]["hold_until"])
    placed = datetime.fromisoformat(new["placed_at"])
    assert hold_until - placed == timedelta(days=7)
    # an order placed before v2 took effect is attributed under v1, three levels
    old = await place(client, c, "100.00", placed_at=(datetime.now(UTC) - timedelta(days=3)).isoformat())
    assert [(x["level"], x["plan_version"]) for x in old["commissions"]] == [(1, 1), (2, 1), (3, 1)]
    # excluded category and minimum amount: no commission, explained per level
    gift = await place(client, c, "100.00", category="gift")
    assert gift["commissions"] == []
    view = (await client.get(f"/api/v1/orders/{gift['id']}", headers=auth(c))).json()
    assert "excluded" in view["attribution"]["levels"][0]["note"]
    small = await place(client, c, "4.99")
    assert small["commissions"] == []
    view = (await client.get(f"/api/v1/orders/{small['id']}", headers=auth(c))).json()
    assert "below the plan minimum" in view["attribution"]["levels"][0]["note"]
    view = (await client.get(f"/api/v1/orders/{new['id']}", headers=auth(c))).json()
    assert view["attribution"]["levels"][2]["note"] == "plan version 2 pays 2 levels"
    listing = (await client.get("/api/v1/commission-plans", headers=admin_headers)).json()
    assert [p["version"] for p in listing["items"]] == [2, 1]
    assert [p["active"] for p in listing["items"]] == [True, False]
    await verify_ok(client, admin_headers)


async def test_plan_validation(client, admin_headers, session):
    cases = [
        (plan_body(max_levels=4), "max_levels"),
        ({**plan_body(), "rates": plan_body()["rates"][:-1]}, "rates"),
        (
            {**plan_body(), "rates": [*plan_body()["rates"], {"level": 3, "rank": "gold", "rate_bps": 1}]},
            "rates[8].level",
        ),
        ({**plan_body(), "rates": [{"level": 1, "rank": "bronze", "rate_bps": 1}]}, "rates[0].rank"),
        ({**plan_body(), "min_order_amount": "1.001"}, "min_order_amount"),
        ({**plan_body(), "effective_from": "2020-01-01T00:00:00Z"}, "effective_from"),
        ({**plan_body(), "hold_days": -1}, "hold_days"),
        ({**plan_body(), "rates": [{"level": 1, "rank": "gold", "rate_bps": 10001}]}, "rate_bps"),
        ({"name": "x"}, "max_levels"),
    ]
    for body, field in cases:
        resp = await client.post("/api/v1/commission-plans", json=body, headers=admin_headers)
        assert resp.status_code == 422, (field, resp.text)
        assert any(field in e["field"] or field in e["message"] for e in resp.json()["errors"]), (
            field,
            resp.json(),
        )
    assert await session.scalar(text("SELECT count(*) FROM commission_plan WHERE version > 1")) == 0


async def test_plan_roles_and_audit(client, admin_headers, make_key, chain, session):
    c = chain[-1]
    assert (
        await client.post("/api/v1/commission-plans", json=plan_body(), headers=auth(c))
    ).status_code == 403
    fin = bearer(await make_key("finance"))
    assert (await client.post("/api/v1/commission-plans", json=plan_body(), headers=fin)).status_code == 403
    assert (await client.get("/api/v1/commission-plans", headers=fin)).status_code == 200
    assert (await client.get("/api/v1/commission-plans", headers=auth(c))).status_code == 403
    resp = await client.post("/api/v1/commission-plans", json=plan_body(), headers=admin_headers)
    assert resp.status_code == 201
    row = (
        await session.execute(
            text("SELECT action, subject_id FROM audit_log WHERE subject_type = 'commission_plan'")
        )
    ).one()
    assert row.action == "commission_plan.created" and row.subject_id == "2"


async def test_platform_cap_is_configurable(client, admin_headers, settings):
    from dataclasses import replace

    from distnet.commissions.schemas import PlanCreate
    from distnet.commissions.service import create_plan
    from distnet.kit.auth import SYSTEM
    from distnet.kit.errors import ValidationFailed

    tight = replace(settings, business=replace(settings.business, max_levels_cap=2))
    async with client.app.state.sessionmaker() as s:
        try:
            await create_plan(
                s,
                settings=tight,
                principal=SYSTEM,
                data=PlanCreate(**{**plan_body(max_levels=3), "rates": []}),
            )
        except ValidationFailed as exc:
            assert exc.extra["errors"][0]["field"] == "max_levels"
        else:  # pragma: no cover
            raise AssertionError("a plan above the cap must be refused")


async def test_commission_list_is_self_only(client, admin_headers, chain, make_key):
    root, a, b, c = chain
    await place(client, c, "10.00")
    await place(client, c, "20.00")
    mine = (await client.get("/api/v1/commissions", headers=auth(b))).json()
    assert len(mine["items"]) == 2 and all(x["beneficiary_id"] == b["id"] for x in mine["items"])
    resp = await client.get(f"/api/v1/commissions?beneficiary_id={c['id']}", headers=auth(b))
    assert resp.status_code == 404
    staff = bearer(await make_key("finance"))
    everything = (await client.get("/api/v1/commissions", headers=staff)).json()
    assert len(everything["items"]) == 6
    page1 = (await client.get("/api/v1/commissions?limit=4", headers=staff)).json()
    page2 = (
        await client.get(f"/api/v1/commissions?limit=4&cursor={page1['next_cursor']}", headers=staff)
    ).json()
    ids = [x["id"] for x in page1["items"] + page2["items"]]
    assert len(ids) == 6 == len(set(ids)) and page2["next_cursor"] is None
    filtered = (await client.get("/api/v1/commissions?status=withheld", headers=staff)).json()
    assert filtered["items"] == []
    for bad in ("status=nope", "limit=0", "limit=501", "cursor=%%%", "beneficiary_id=-1", "beneficiary_id=x"):
        resp = await client.get(f"/api/v1/commissions?{bad}", headers=staff)
        assert resp.status_code in (400, 422), bad


async def test_explain(client, admin_headers, chain, session):
    root, a, b, c = chain
    order = await place(client, c, "99.99", category="books")
    level2 = next(x for x in order["commissions"] if x["level"] == 2)
    resp = await client.get(f"/api/v1/commissions/{level2['id']}/explain", headers=auth(b))
    assert resp.status_code == 200
    exp = resp.json()
    assert exp["plan"]["version"] == 1 and exp["level"] == 2
    assert exp["rank_used"] == "member" and exp["rate_bps"] == 300
    assert exp["base"] == "99.99" and exp["amount"] == "2.99"
    assert exp["formula"] == "floor(99.99 x 300 / 10000) = 2.99"
    assert "sponsor" in exp["rule_path"][1]
    assert {e["check"] for e in exp["exclusions_checked"]} >= {"category", "min_order_amount", "max_levels"}
    assert all(e["passed"] for e in exp["exclusions_checked"])
    assert exp["available"]["status"] == "pending" and exp["withheld"] is None
    assert [p["account"] for p in exp["postings"]] == ["pending"]
    # the seller may not read the sponsor's commission explanation; staff may
    assert (
        await client.get(f"/api/v1/commissions/{level2['id']}/explain", headers=auth(c))
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/commissions/{level2['id']}/explain", headers=admin_headers)
    ).status_code == 200
    assert (await client.get("/api/v1/commissions/999999/explain", headers=admin_headers)).status_code == 404


async def test_explain_withheld(client, admin_headers, chain, session):
    root, a, b, c = chain
    card_id = await session.scalar(text("SELECT id FROM card WHERE distributor_id = :d"), {"d": c["id"]})
    hold_id = await session.scalar(
        text(
            "INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key) "
            "VALUES (:d, :c, 'manual', 'actor', 'x') RETURNING id"
        ),
        {"d": c["id"], "c": card_id},
    )
    await session.commit()
    # the seller is held: the order itself is refused; a batch by admin is refused too
    resp = await client.post(
        "/api/v1/orders",
        json={"external_id": "e1", "card_number": c["card"]["number"], "amount": "1.00"},
        headers=admin_headers,
    )
    assert resp.status_code == 403
    # hold the sponsor instead: its level-2 commission is withheld and says why
    await session.execute(
        text(
            "UPDATE hold SET distributor_id = :b, card_id = (SELECT id FROM card WHERE distributor_id = :b) WHERE id = :h"
        ),
        {"b": b["id"], "h": hold_id},
    )
    await session.commit()
    order = await place(client, c, "10.00")
    level2 = next(x for x in order["commissions"] if x["level"] == 2)
    exp = (await client.get(f"/api/v1/commissions/{level2['id']}/explain", headers=auth(b))).json()
    assert exp["status"] == "withheld"
    assert exp["withheld"]["hold_id"] == hold_id and exp["withheld"]["reason"] == "manual"
    assert "violation hold" in exp["withheld"]["explanation"]
    assert [p["account"] for p in exp["postings"]] == ["withheld"]


async def test_rank_change_is_explained(client, admin_headers, chain, session):
    root, a, b, c = chain
    await session.execute(text("UPDATE distributor SET rank = 'gold' WHERE id = :b"), {"b": b["id"]})
    await session.commit()
    order = await place(client, c, "100.00")
    level2 = next(x for x in order["commissions"] if x["level"] == 2)
    assert level2["rank_used"] == "gold" and level2["amount"] == "5.00"
    await session.execute(text("UPDATE distributor SET rank = 'silver' WHERE id = :b"), {"b": b["id"]})
    await session.commit()
    exp = (await client.get(f"/api/v1/commissions/{level2['id']}/explain", headers=auth(b))).json()
    assert exp["rank_used"] == "gold" and exp["rank_now"] == "silver"
    assert "never retroactively" in exp["rank_reason"]
