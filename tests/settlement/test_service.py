"""Settlement (invariants 4 and 8): what moves, how it is netted and withheld, and that a run
repeated, two runs at once, different partitionings and a killed run all leave the same ledger."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from distnet.settlement.errors import AsOfInFuture
from distnet.settlement.service import plan_partitions, settle
from tests.settlement.builders import add_commissions, add_distributors, days_ago, ledger_snapshot
from tests.settlement.conftest import build_world


async def _statuses(session, d):
    rows = await session.execute(
        text("SELECT status, amount - reversed AS net FROM commission WHERE beneficiary_id = :d ORDER BY id"),
        {"d": d},
    )
    return [(r.status, r.net) for r in rows]


async def _balances(session, d):
    rows = await session.execute(
        text("SELECT kind, balance FROM ledger_account WHERE distributor_id = :d"), {"d": d}
    )
    return dict(rows.all())


def test_plan_partitions_covers_the_range_without_overlap():
    assert plan_partitions(1, 10, 3) == [(1, 4), (5, 8), (9, 10)]
    assert plan_partitions(5, 5, 8) == [(5, 5)]
    parts = plan_partitions(17, 100_003, 7)
    assert parts[0][0] == 17 and parts[-1][1] == 100_003
    assert all(b[0] == a[1] + 1 for a, b in zip(parts, parts[1:], strict=False))


async def test_settlement_moves_due_commissions_nets_debt_and_withholds(sessionmaker, session):
    world = await build_world(sessionmaker)
    d = world["ids"]
    result = await settle(sessionmaker, partitions=3)
    assert result.status == "done" and result.partitions_done == 3

    # an ordinary distributor: due ones available (net of refunds), not-due one still pending
    assert await _statuses(session, d[1]) == [("available", 1001), ("available", 201), ("pending", 777)]
    b = await _balances(session, d[1])
    assert b["pending"] == 777 and b["available"] == 1202 and b["owed"] == 0

    # refunded away: nothing to make available, marked reversed, no money moved
    assert await _statuses(session, d[0]) == [
        ("available", 1000),
        ("available", 200),
        ("pending", 777),
        ("reversed", 0),
    ]
    assert (await _balances(session, d[0]))["available"] == 1200

    # violation hold: withheld, pointing at the hold; the money sits in withheld
    rows = (
        await session.execute(
            text(
                "SELECT c.status, c.withheld_hold_id, h.reason FROM commission c LEFT JOIN hold h ON h.id = c.withheld_hold_id "
                "WHERE c.beneficiary_id = :d AND c.hold_until <= now() ORDER BY c.id"
            ),
            {"d": d[3]},
        )
    ).all()
    assert [(r.status, r.reason) for r in rows] == [("withheld", "order_brushing")] * 2
    b = await _balances(session, d[3])
    assert b["withheld"] == 1003 + 203 and b["available"] == 0 and b["pending"] == 777

    # maintenance holds withhold nothing; a lifted hold is no hold
    assert [s for s, _ in await _statuses(session, d[4])][:2] == ["available", "available"]
    assert [s for s, _ in await _statuses(session, d[5])][:2] == ["available", "available"]

    # debt 500 < 1212 becoming available: netted first
    b = await _balances(session, d[6])
    assert b["owed"] == 0 and b["available"] == 1006 + 206 - 500
    # debt 100000 > 1214: all of it goes to the debt, the rest stays owed
    b = await _balances(session, d[7])
    assert b["owed"] == -100_000 + 1007 + 207 and b["available"] == 0
    assert await _statuses(session, d[7]) == [("available", 1007), ("available", 207), ("pending", 777)]

    # totals reported: 11 distributors x 2 available + d0's, withheld counted apart
    assert result.moved == 22 and result.withheld == 2
    assert result.netted_against_debt == "17.14"  # 500 + 1214 minor units
    total = sum(1000 + i + 200 + i for i in range(12)) - (1003 + 203)
    assert result.amount == f"{total // 100}.{total % 100:02d}"

    # one aggregated event per distributor that got money, none for the withheld one
    events = (
        await session.execute(
            text(
                "SELECT distributor_id, payload FROM outbox_event WHERE topic = 'commission.available' ORDER BY distributor_id"
            )
        )
    ).all()
    assert [e.distributor_id for e in events] == [x for x in d if x != d[3]]
    ev7 = next(e.payload for e in events if e.distributor_id == d[7])
    assert ev7["commissions"] == 2 and ev7["amount"] == 1214 and ev7["netted_against_debt"] == 1214

    snap = await ledger_snapshot(session)
    assert snap["unbalanced"] == 0 and snap["accounts"] == snap["posting_sums"]


async def test_running_again_moves_nothing(sessionmaker, session):
    await build_world(sessionmaker)
    first = await settle(sessionmaker)
    before = await ledger_snapshot(session)
    second = await settle(sessionmaker)
    assert second.id != first.id and second.moved == 0 and second.amount == "0.00"
    session.expire_all()
    assert await ledger_snapshot(session) == before


async def test_commissions_due_later_move_in_a_later_run(sessionmaker, session):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_commissions(
            s,
            [
                {"beneficiary_id": d, "amount": 100, "hold_until": days_ago(2)},
                {"beneficiary_id": d, "amount": 50, "hold_until": days_ago(-2)},
            ],
        )
        await s.commit()
    early = await settle(sessionmaker, as_of=days_ago(1))
    assert early.moved == 1 and early.amount == "1.00"
    with pytest.raises(AsOfInFuture):  # never ahead of the hold days
        await settle(sessionmaker, as_of=days_ago(-3))
    # time passes: the second commission's hold ends
    await session.execute(
        text("UPDATE commission SET hold_until = :t WHERE amount = 50"), {"t": days_ago(0.5)}
    )
    await session.commit()
    later = await settle(sessionmaker)
    assert later.moved == 1 and later.amount == "0.50"
    assert (await _balances(session, d))["available"] == 150


async def _scenario(sessionmaker, truncate, runner) -> dict:
    await build_world(sessionmaker)
    await runner()
    async with sessionmaker() as s:
        snap = await ledger_snapshot(s)
    truncate()
    return snap


async def test_two_runs_at_once_and_any_partitioning_leave_the_clean_ledger(sessionmaker, engine, truncate):
    from distnet.db import make_engine, make_sessionmaker

    as_of = days_ago(0)
    # both scenarios start from empty tables: the migrations' seed rows (the points platform
    # accounts) are there when this test runs first in its database and gone after any truncate
    truncate()
    clean = await _scenario(sessionmaker, truncate, lambda: settle(sessionmaker, as_of=as_of, partitions=1))

    other_engine = make_engine(str(engine.url.render_as_string(hide_password=False)), pool_size=2)
    other = make_sessionmaker(other_engine)
    try:

        async def both():
            results = await asyncio.gather(
                settle(sessionmaker, as_of=as_of, partitions=5), settle(other, as_of=as_of, partitions=5)
            )
            # the second trigger joined the first run instead of racing it
            assert results[0].id == results[1].id

        concurrent = await _scenario(sessionmaker, truncate, both)
    finally:
        await other_engine.dispose()
    assert concurrent["accounts"] == clean["accounts"]
    assert concurrent["commissions"] == clean["commissions"]
    assert concurrent["posting_sums"] == clean["posting_sums"]

    many = await _scenario(sessionmaker, truncate, lambda: settle(sessionmaker, as_of=as_of, partitions=12))
    assert many["accounts"] == clean["accounts"] and many["commissions"] == clean["commissions"]


CRASH_SCRIPT = Path(__file__).with_name("crash_settle.py")


async def test_killed_half_way_and_rerun_leaves_the_clean_ledger(
    sessionmaker, database_url, truncate, session
):
    as_of = days_ago(0)
    clean = await _scenario(sessionmaker, truncate, lambda: settle(sessionmaker, as_of=as_of, partitions=4))

    await build_world(sessionmaker)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CRASH_SCRIPT),
        database_url,
        as_of.isoformat(),
        "4",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("MID"):
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line.decode().strip())
        assert lines and lines[-1].startswith("MID"), (lines, await proc.stderr.read())  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 in the middle of partition 3's transaction
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert lines[:2] == ["DONE 1", "DONE 2"]

    # the killed run is still running, with exactly the finished partitions done
    for _ in range(50):  # the server notices the dead client and rolls its transaction back
        row = (
            await session.execute(
                text(
                    "SELECT status, partitions_done, (SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in%' "
                    "AND application_name = 'crash_settle') AS stuck FROM settlement_run"
                )
            )
        ).one()
        await session.rollback()
        if row.stuck == 0:
            break
        await asyncio.sleep(0.1)
    assert (row.status, row.partitions_done) == ("running", 2)
    half = await ledger_snapshot(session)
    await session.rollback()
    assert half["accounts"] != clean["accounts"]  # half-way: some money moved, not all

    resumed = await settle(sessionmaker, as_of=as_of)  # resumes the unfinished run
    assert resumed.status == "done" and resumed.partitions_done == 4
    after = await ledger_snapshot(session)
    assert after["accounts"] == clean["accounts"]
    assert after["commissions"] == clean["commissions"]
    assert after["posting_sums"] == clean["posting_sums"]
    assert after["kinds"] == clean["kinds"]


async def test_a_worker_plans_every_partition_for_its_own_arrays(database_url):
    """A worker settles partition after partition on one connection, where the partition statement
    is server-side prepared. Once PostgreSQL switched it to its generic plan (after five runs), the
    plan guessed ten elements per array and joined the beneficiaries to the accounts in a nested
    loop: at L a partition took 65-71 s instead of 11-13 s. Every run must be custom-planned."""
    from distnet.db import make_engine, make_sessionmaker, session_scope
    from distnet.settlement.service import process_partition, start_run

    engine = make_engine(database_url, pool_size=1)  # one connection: every partition on it
    one = make_sessionmaker(engine)
    try:
        async with one() as s:
            ids = await add_distributors(s, 12)
            await add_commissions(s, [{"beneficiary_id": d, "amount": 1000} for d in ids])
            await s.commit()
        async with session_scope(one) as s:
            run, _ = await start_run(s, as_of=days_ago(0), partitions=12, triggered_by="test")
            run_id = run.id
        moved = 0
        for _ in range(12):  # as settle() does, one committed transaction per partition
            async with session_scope(one) as s:
                part = await process_partition(s, run_id=run_id)
                assert part is not None
                moved += part.moved
        assert moved == 12
        async with one() as s:
            plans = (
                await s.execute(
                    text(
                        "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                        "WHERE statement LIKE '%UPDATE commission c%'"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert plans.generic_plans == 0
    # prepared from its second run on the connection: the other eleven were planned each time
    assert plans.custom_plans == 11
