"""Ranks: immediate upgrade inside the order's transaction, downgrade only at evaluation, the
public ladder, progress on /me, team stats with sales per level."""

from __future__ import annotations

from sqlalchemy import text

from distnet.ranks.service import evaluate_ranks
from tests.factories import auth, make_tree
from tests.orders.helpers import place, refund


async def test_ladder_is_public(client):
    resp = await client.get("/api/v1/ranks")
    assert resp.status_code == 200
    body = resp.json()
    assert [i["rank"] for i in body["items"]] == ["member", "silver", "gold", "platinum"]
    assert body["items"][1]["min_personal_sales"] == "1000.00"
    assert body["period_days"] == 90
    assert body["items"][3]["rates"] == [
        {"level": 1, "rate_bps": 2000},
        {"level": 2, "rate_bps": 600},
        {"level": 3, "rate_bps": 250},
    ]


async def test_upgrade_applies_to_the_next_order(client, admin_headers, chain, session):
    root, a, b, c = chain
    first = await place(client, c, "999.99")
    assert first["commissions"][0]["rank_used"] == "member"
    crossing = await place(client, c, "0.01")  # personal 1,000.00: silver from now on
    assert crossing["commissions"][0]["rank_used"] == "member"  # attributed before the upgrade
    me = (await client.get("/api/v1/me", headers=auth(c))).json()
    assert me["rank"] == "silver"
    assert me["rank_progress"]["next_rank"] == "gold"
    assert me["rank_progress"]["personal_sales"] == "1000.00"
    assert me["rank_progress"]["personal_needed"] == "2000.00"
    assert me["rank_progress"]["team_needed"] == "20000.00"
    nxt = await place(client, c, "100.00")
    assert nxt["commissions"][0]["rank_used"] == "silver" and nxt["commissions"][0]["amount"] == "12.00"
    event = (
        await session.execute(text("SELECT payload FROM outbox_event WHERE topic = 'rank.changed'"))
    ).one()
    assert event.payload == {
        "distributor_id": c["id"],
        "from": "member",
        "to": "silver",
        "reason": "threshold_crossed",
    }
    audit = (
        await session.execute(text("SELECT before, after FROM audit_log WHERE action = 'rank.changed'"))
    ).one()
    assert audit.before == {"rank": "member"} and audit.after["rank"] == "silver"
    # the upline's team sales count too: b has 1,100.00 team sales (personal 0: still member)
    team = (await client.get(f"/api/v1/distributors/{b['id']}/team-stats", headers=auth(b))).json()
    assert team["by_level"][0] == {"level": 1, "count": 1, "sales": "1100.00"}
    root_stats = (
        await client.get(f"/api/v1/distributors/{root['id']}/team-stats", headers=auth(root))
    ).json()
    assert [lv["sales"] for lv in root_stats["by_level"]] == ["0.00", "0.00", "1100.00"]


async def test_downgrade_waits_for_evaluation(client, admin_headers, chain, session, sessionmaker):
    root, a, b, c = chain
    order = await place(client, c, "1000.00")
    assert (await client.get("/api/v1/me", headers=auth(c))).json()["rank"] == "silver"
    await refund(client, order, "500.00", auth(c))
    # below the threshold again, but a downgrade waits for the periodic evaluation
    assert (await client.get("/api/v1/me", headers=auth(c))).json()["rank"] == "silver"
    team = (await client.get(f"/api/v1/distributors/{b['id']}/team-stats", headers=auth(b))).json()
    assert team["by_level"][0]["sales"] == "500.00"
    async with sessionmaker() as s:
        changes = await evaluate_ranks(s)
        await s.commit()
    assert changes == [{"id": c["id"], "old_rank": "silver", "new_rank": "member"}]
    assert (await client.get("/api/v1/me", headers=auth(c))).json()["rank"] == "member"
    async with sessionmaker() as s:
        assert await evaluate_ranks(s) == []  # idempotent


async def test_evaluation_upgrades_deep_uplines(client, admin_headers, session, sessionmaker):

    chain = await make_tree(client, admin_headers, 5)
    # root is 5 levels above the seller: outside the cheap check, upgraded at evaluation
    await session.execute(text("UPDATE distributor SET rank = 'member'"))
    await session.execute(
        text(
            "INSERT INTO sales_daily (distributor_id, day, personal, team) VALUES (:d, current_date, 300000, 2000000)"
        ),
        {"d": chain[0]["id"]},
    )
    await session.commit()
    async with sessionmaker() as s:
        changes = await evaluate_ranks(s)
        await s.commit()
    assert changes == [{"id": chain[0]["id"], "old_rank": "member", "new_rank": "gold"}]
    # a trailing period: sales older than 90 days no longer count
    await session.execute(text("UPDATE sales_daily SET day = current_date - 90"))
    await session.commit()
    async with sessionmaker() as s:
        changes = await evaluate_ranks(s)
        await s.commit()
    assert changes == [{"id": chain[0]["id"], "old_rank": "gold", "new_rank": "member"}]


async def test_sales_writers_do_not_queue_on_the_root(client, admin_headers, sessionmaker, settings):
    """Every order credits the team sales of every ancestor, the root included. The credit is
    appended (sales_delta), so an order in another branch does not wait for the first one's
    commit; folding moves the deltas into sales_daily without changing any total."""
    from distnet.kit.auth import SYSTEM
    from distnet.orders import service
    from distnet.orders.schemas import OrderCreate
    from distnet.ranks.service import fold_sales, sales_totals
    from tests.factories import register

    root, x, y, z = await make_tree(client, admin_headers, 3)
    p = await register(client, sponsor=root, name="p")  # another branch: shares only the root
    await place(client, root, "1.00")  # the plan and platform accounts exist, as in production
    async with sessionmaker() as first, sessionmaker() as second:
        await service.create_order(
            first,
            settings,
            SYSTEM,
            OrderCreate(external_id="deep", card_number=z["card"]["number"], amount="70.00"),
        )
        await second.execute(text("SET LOCAL lock_timeout = '2s'"))
        status, _ = await service.create_order(
            second,
            settings,
            SYSTEM,
            OrderCreate(external_id="shallow", card_number=p["card"]["number"], amount="30.00"),
        )
        assert status == 201
        await second.commit()
        await first.commit()
    async with sessionmaker() as s:
        before = {d["id"]: await sales_totals(s, distributor_id=d["id"], days=90) for d in (root, x, z, p)}
        assert (
            before[root["id"]] == (100, 10000)
            and before[z["id"]] == (7000, 0)
            and before[p["id"]] == (3000, 0)
        )
        assert await s.scalar(text("SELECT count(*) FROM sales_delta")) > 0
        assert await fold_sales(s) > 0
        await s.commit()
    async with sessionmaker() as s:
        assert await s.scalar(text("SELECT count(*) FROM sales_delta")) == 0
        assert {
            d["id"]: await sales_totals(s, distributor_id=d["id"], days=90) for d in (root, x, z, p)
        } == before
        assert await fold_sales(s) == 0  # nothing left: folding twice changes nothing
