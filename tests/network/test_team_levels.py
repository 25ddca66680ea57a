"""The team aggregate (issue 19): team stats read ``team_level`` plus the unfolded deltas, which
must always equal a recount of the closure and the members' orders: after joins, orders, batches,
refunds, moves, closures, folds, the migration's backfill and concurrent writers."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from sqlalchemy import text

import distnet
from distnet.network.checks import TEAM_LEVELS_RECOUNT
from distnet.network.repository import fold_team
from tests.factories import auth, close_account, register
from tests.orders.helpers import order_body, place, refund, verify_ok

RECOUNT = """
    SELECT c.depth, count(*), coalesce(sum(s.net), 0)
      FROM distributor_closure c
      LEFT JOIN (SELECT seller_id, sum(amount - refunded_amount) AS net FROM orders GROUP BY 1) s
        ON s.seller_id = c.descendant_id
     WHERE c.ancestor_id = :a GROUP BY 1 ORDER BY 1"""


def _minor(amount: str) -> int:
    units, _, cents = amount.partition(".")
    return int(units) * 100 + int(cents or 0)


async def _stats(client, d, headers=None) -> list[tuple[int, int, int]]:
    resp = await client.get(f"/api/v1/distributors/{d['id']}/team-stats", headers=headers or auth(d))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    levels = [(lv["level"], lv["count"], _minor(lv["sales"])) for lv in body["by_level"]]
    assert body["total"] == sum(count for _, count, _ in levels)
    return levels


async def _recounted(session, d) -> list[tuple[int, int, int]]:
    return [
        (int(a), int(b), int(c)) for a, b, c in (await session.execute(text(RECOUNT), {"a": d["id"]})).all()
    ]


async def _agrees(session) -> None:
    bad = (await session.execute(text(TEAM_LEVELS_RECOUNT))).all()
    assert bad == [], bad


async def _fold(sessionmaker) -> None:
    async with sessionmaker() as s:
        await fold_team(s)
        await s.commit()
    async with sessionmaker() as s:
        assert await s.scalar(text("SELECT count(*) FROM team_level_delta")) == 0


async def test_levels_follow_joins_orders_refunds_moves_and_closures(
    client, admin_headers, session, sessionmaker
):
    root = await register(client, admin_headers, name="Root")
    a = await register(client, sponsor=root, name="a")
    b = await register(client, sponsor=a, name="b")
    c = await register(client, sponsor=b, name="c")
    x = await register(client, sponsor=root, name="x")
    sold_b = await place(client, b, "100.00")
    sold_c = await place(client, c, "50.00")
    await refund(client, sold_c, "20.00", auth(c))
    await place(client, x, "10.00")
    assert await _stats(client, root) == [(1, 2, 1000), (2, 1, 10000), (3, 1, 3000)]
    assert await _stats(client, a) == [(1, 1, 10000), (2, 1, 3000)]
    await _agrees(session)
    await _fold(sessionmaker)  # the same answer from folded rows
    assert await _stats(client, root) == [(1, 2, 1000), (2, 1, 10000), (3, 1, 3000)]
    await verify_ok(client, admin_headers)  # ledger verify runs the network check too

    # b's subtree moves under x: its members and their sales leave a and follow them
    moved = await client.put(
        f"/api/v1/distributors/{b['id']}/sponsor", json={"sponsor_id": x["id"]}, headers=admin_headers
    )
    assert moved.status_code == 200, moved.text
    assert await _stats(client, a) == []
    assert await _stats(client, x) == [(1, 1, 10000), (2, 1, 3000)]
    assert await _stats(client, root) == [(1, 2, 1000), (2, 1, 10000), (3, 1, 3000)]
    await refund(client, sold_b, "40.00", admin_headers)  # after the move: credited where b is now
    assert await _stats(client, x) == [(1, 1, 6000), (2, 1, 3000)]
    await _agrees(session)

    # b closes: c moves up a level, b and its sales leave every team
    closed = await close_account(client, b)
    assert closed.status_code == 200, closed.text
    assert await _stats(client, x) == [(1, 1, 3000)]
    assert await _stats(client, root) == [(1, 2, 1000), (2, 1, 3000)]
    await _fold(sessionmaker)
    for d in (root, a, x, c):
        assert await _stats(client, d) == await _recounted(session, d)
    assert await session.scalar(text("SELECT count(*) FROM team_level WHERE members = 0 AND sales = 0")) == 0
    await verify_ok(client, admin_headers)


async def test_batches_and_fold_twice(client, admin_headers, session, sessionmaker):
    root = await register(client, admin_headers, name="Root")
    kids = [await register(client, sponsor=root, name=f"k{i}") for i in range(3)]
    grandkid = await register(client, sponsor=kids[0], name="g")
    batch = [order_body(k, f"{i + 1}.00") for i, k in enumerate([*kids, grandkid, grandkid])]
    resp = await client.post("/api/v1/orders/batch", json={"orders": batch}, headers=admin_headers)
    assert resp.status_code == 200 and all(r["status"] == "created" for r in resp.json()["items"]), resp.text
    assert await _stats(client, root) == [(1, 3, 600), (2, 1, 900)]
    await _fold(sessionmaker)
    await _fold(sessionmaker)  # nothing left: folding again changes nothing
    assert await _stats(client, root) == [(1, 3, 600), (2, 1, 900)]
    await _agrees(session)


async def test_concurrent_joins_orders_refunds_and_a_move(client, admin_headers, session, sessionmaker):
    root = await register(client, admin_headers, name="Root")
    left = await register(client, sponsor=root, name="left")
    right = await register(client, sponsor=root, name="right")
    sellers = [await register(client, sponsor=left, name=f"s{i}") for i in range(4)]
    orders = [await place(client, s, "10.00") for s in sellers]

    async def join(i: int) -> None:
        await register(client, sponsor=sellers[i % 4], name=f"j{i}")

    async def sell(i: int) -> None:
        await place(client, sellers[i % 4], f"{i + 1}.00")

    async def give_back(i: int) -> None:
        await refund(client, orders[i], "1.00", admin_headers)

    async def move() -> None:
        resp = await client.put(
            f"/api/v1/distributors/{sellers[0]['id']}/sponsor",
            json={"sponsor_id": right["id"]},
            headers=admin_headers,
        )
        assert resp.status_code == 200, resp.text

    async def folds() -> None:
        for _ in range(3):
            await _fold(sessionmaker)

    await asyncio.gather(
        *(join(i) for i in range(6)),
        *(sell(i) for i in range(8)),
        *(give_back(i) for i in range(4)),
        move(),
        folds(),
    )
    await _agrees(session)
    for d in (root, left, right, *sellers):
        assert await _stats(client, d) == await _recounted(session, d)
    # every order and member is somewhere: the root's total is the whole tree
    assert sum(count for _, count, _ in await _stats(client, root)) == 2 + 4 + 6
    await _fold(sessionmaker)
    await _agrees(session)


async def test_migration_backfill_equals_recount(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    kid = await register(client, sponsor=root, name="kid")
    grandkid = await register(client, sponsor=kid, name="g")
    await refund(client, await place(client, grandkid, "30.00"), "5.00", auth(grandkid))
    await place(client, kid, "7.00")
    before = await _stats(client, root)
    spec = importlib.util.spec_from_file_location(
        "team_level_migration",
        Path(distnet.__file__).parent / "migrations/versions/2026-12-02-1600_team_level.py",
    )
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    await session.execute(text("DELETE FROM team_level_delta"))
    await session.execute(text("DELETE FROM team_level"))
    await session.execute(text(migration.BACKFILL))
    await _agrees(session)
    assert await session.scalar(text("SELECT count(*) FROM team_level_delta")) == 0
    assert (
        [
            tuple(r)
            for r in (
                await session.execute(
                    text(
                        "SELECT depth, members, sales FROM team_level WHERE ancestor_id = :a ORDER BY depth"
                    ),
                    {"a": root["id"]},
                )
            )
        ]
        == before
        == [(1, 1, 700), (2, 1, 2500)]
    )
