"""Reminders nobody's event triggers: the rank downgrade warning.

Ranks are evaluated over trailing sales (``ranks.ladder``): sales older than the period drop out
day by day. ``warn_downgrades`` (daily job) finds the distributors whose rank would be lost at
the evaluation ``DISTNET_DOWNGRADE_WARNING_DAYS`` from now if they sold nothing more (only the
sales that still count then are summed) and tells them what they need, in one statement. Each
distributor is warned at most once per rank and ISO week (the event key), however often the job runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.notifications import repository as repo
from distnet.notifications.repository import fan_out_rows
from distnet.ranks.ladder import RANK_ORDER
from distnet.ranks.service import SALES, ladder_at
from distnet.settings import Settings


async def warn_downgrades(session: AsyncSession, settings: Settings, *, now: datetime | None = None) -> int:
    ladder = await ladder_at(session)
    now = now or datetime.now(UTC)
    ahead = settings.notify.downgrade_warning_days
    year, week, _ = now.isocalendar()
    params: dict[str, Any] = {
        "ranks": [s.rank for s in ladder.steps],
        "positions": [RANK_ORDER.index(s.rank) for s in ladder.steps],
        "min_personal": [s.min_personal for s in ladder.steps],
        "min_team": [s.min_team for s in ladder.steps],
        "days": ladder.period_days,
        "ahead": ahead,
        "week": f"{year}-W{week:02d}",
        "evaluate_on": (now + timedelta(days=ahead)).date().isoformat(),
    }
    return await fan_out_rows(
        session, rows=repo.at_risk_of_downgrade(SALES), params=params, kind="rank_downgrade_warning"
    )
