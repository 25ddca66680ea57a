"""Why an account cannot be closed (注销) right now. Each check returns reason codes; the domains'
rules are stated here in one place so the refusal lists every reason at once."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CLOSURE_CHECKS: dict[str, str] = {
    "active_violation_hold": """
        SELECT EXISTS (SELECT 1 FROM hold WHERE distributor_id = :id AND lifted_at IS NULL
                        AND reason <> 'maintenance')""",
    "open_appeal": """
        SELECT EXISTS (SELECT 1 FROM appeal WHERE distributor_id = :id
                        AND status NOT IN ('approved', 'rejected'))""",
    "money_owed": """
        SELECT EXISTS (SELECT 1 FROM ledger_account WHERE distributor_id = :id AND kind = 'owed'
                        AND balance <> 0)""",
    "payout_in_progress": """
        SELECT EXISTS (SELECT 1 FROM payout_item WHERE distributor_id = :id AND status = 'reserved')""",
}

REASON_TEXT = {
    "active_violation_hold": "the card has an active violation hold",
    "open_appeal": "an appeal is still open",
    "money_owed": "money is owed to the platform (repay it first)",
    "payout_in_progress": "a payout to this distributor is in progress",
}


async def closure_blockers(session: AsyncSession, distributor_id: int) -> list[dict[str, str]]:
    reasons = []
    for code, sql in CLOSURE_CHECKS.items():
        if await session.scalar(text(sql), {"id": distributor_id}):
            reasons.append({"code": code, "detail": REASON_TEXT[code]})
    return reasons
