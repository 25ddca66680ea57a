from __future__ import annotations

import pytest

from tests.conftest import bearer
from tests.settlement.builders import add_available, add_distributors, add_hold


@pytest.fixture
async def finance(make_key):
    """Keys by role: two finance users, two approvers, one user holding both roles."""
    return {
        "finance": bearer(await make_key("finance", name="fin-1")),
        "finance2": bearer(await make_key("finance", name="fin-2")),
        "approver": bearer(await make_key("finance_approver", name="appr-1")),
        "approver2": bearer(await make_key("finance_approver", name="appr-2")),
        "both": bearer(await make_key("finance", "finance_approver", name="fin-appr")),
        "risk": bearer(await make_key("risk_reviewer", name="risk")),
    }


@pytest.fixture
async def payable(sessionmaker):
    """Available balances: two above the default minimum (100.00), one below, one above under a
    violation hold (skipped), one above under a maintenance hold only (paid)."""
    async with sessionmaker() as s:
        d = await add_distributors(s, 5)
        commissions = {
            d[0]: [await add_available(s, d[0], 12_000), await add_available(s, d[0], 8_000)],
            d[1]: [await add_available(s, d[1], 15_000)],
            d[2]: [await add_available(s, d[2], 5_000)],
            d[3]: [await add_available(s, d[3], 30_000)],
            d[4]: [await add_available(s, d[4], 11_000)],
        }
        await add_hold(s, d[3], "fake_promotion")
        await add_hold(s, d[4], "maintenance", ends_at=None)
        await s.commit()
    return {"ids": d, "commissions": commissions}
