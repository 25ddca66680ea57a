"""Entry points of the risk domain for the scheduler and other domains (the details live in
holds.py, rules.py, detectors/, scan.py, maintenance.py, appeals.py, cases.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import SYSTEM
from distnet.risk.holds import forfeit_due, lift_settled_debt_holds
from distnet.risk.scan import run_scan


async def scan(session: AsyncSession) -> dict[str, Any]:
    """Periodic (worker/jobs.py ``risk_scan``): every detector over the whole network."""
    result = await run_scan(session, SYSTEM)
    return {"id": result.id, "cases_opened": result.cases_opened, "holds_placed": result.holds_placed}


__all__ = ["forfeit_due", "lift_settled_debt_holds", "scan"]
