"""A single order runs the rank upgrade check only when its own statement finds that the order can
lift the seller or one of its nearest uplines (orders.repository: rank_may_change); the upgrades
themselves are the same as before (tests/ranks)."""

from __future__ import annotations

from distnet.ranks import service as ranks
from tests.factories import auth, make_tree
from tests.orders.helpers import place


async def test_the_check_runs_only_when_a_rank_can_move(client, admin_headers, monkeypatch) -> None:
    root, a, b, c = await make_tree(client, admin_headers, 3)
    await place(client, root, "1.00")  # the first order of a database opens the plan and accounts (accept)
    checks: list[int] = []
    real = ranks.upgrade_after_orders

    async def counted(session, *, orders, params):
        checks.append(params["order_ids"][0])
        return await real(session, orders=orders, params=params)

    monkeypatch.setattr(ranks, "upgrade_after_orders", counted)
    small = await place(client, c, "100.00")
    assert checks == [] and "rank_changes" not in small  # 100.00 lifts nobody: no check
    crossing = await place(client, c, "900.00")  # c's personal sales reach silver's 1,000.00
    assert checks == [crossing["id"]]
    assert crossing["rank_changes"] == [{"distributor_id": c["id"], "from": "member", "to": "silver"}]
    after = await place(client, c, "1.00")  # silver already: nothing left to move
    assert checks == [crossing["id"]] and "rank_changes" not in after


async def test_an_upline_lifted_by_its_teams_order(client, admin_headers, monkeypatch) -> None:
    root, a, b, c = await make_tree(client, admin_headers, 3)
    await place(client, b, "3000.00")  # b: silver now, gold's personal sales reached, no team yet
    assert (await client.get("/api/v1/me", headers=auth(b))).json()["rank"] == "silver"
    checks: list[int] = []
    real = ranks.upgrade_after_orders

    async def counted(session, *, orders, params):
        checks.append(params["order_ids"][0])
        return await real(session, orders=orders, params=params)

    monkeypatch.setattr(ranks, "upgrade_after_orders", counted)
    crossing = await place(client, c, "20000.00")  # b's team sales reach gold's 20,000.00
    assert checks == [crossing["id"]]
    moved = {ch["distributor_id"]: ch["to"] for ch in crossing["rank_changes"]}
    # c: silver (20,000.00 personal, no team); b: gold; a: team sales but no personal sales, member
    assert moved == {c["id"]: "silver", b["id"]: "gold"}
    assert (await client.get("/api/v1/me", headers=auth(b))).json()["rank"] == "gold"
