from __future__ import annotations

import psycopg
import pytest

from tests.settlement.builders import add_commissions, add_debt, add_distributors, add_hold, days_ago


@pytest.fixture
def truncate(database_url, _truncate_sql):
    """Empty every table (as after a test), to build the same world again for a comparison."""

    def _run() -> None:
        url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_truncate_sql)

    return _run


async def build_world(sessionmaker) -> dict:
    """A small network with every settlement case: due and not due, partial and full refunds,
    a violation hold, a maintenance hold, a lifted hold, debt smaller and larger than the money."""
    async with sessionmaker() as s:
        d = await add_distributors(s, 12)
        rows = []
        for i, dist in enumerate(d):
            rows += [
                {"beneficiary_id": dist, "amount": 1000 + i},  # due
                {"beneficiary_id": dist, "amount": 300 + i, "reversed": 100},  # due, partly refunded
                {"beneficiary_id": dist, "amount": 777, "hold_until": days_ago(-3)},  # not due yet
            ]
        rows.append({"beneficiary_id": d[0], "amount": 500, "reversed": 500})  # refunded away
        await add_commissions(s, rows)
        await add_hold(s, d[3], "order_brushing")
        await add_hold(s, d[4], "maintenance", ends_at=days_ago(-1))
        lifted = await add_hold(s, d[5], "manual")
        from sqlalchemy import text

        await s.execute(
            text("UPDATE hold SET lifted_at = now(), outcome = 'cleared' WHERE id = :id"), {"id": lifted}
        )
        await add_debt(s, d[6], 500)  # less than what becomes available: fully netted
        await add_debt(s, d[7], 100_000)  # more: everything netted, debt remains
        await s.commit()
    return {"ids": d}
