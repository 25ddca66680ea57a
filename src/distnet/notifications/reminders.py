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

from distnet.notifications.repository import fan_out_rows
from distnet.ranks.ladder import RANK_ORDER
from distnet.ranks.service import SALES, ladder_at
from distnet.settings import Settings

_AT_RISK = """
WITH ladder AS (
    SELECT * FROM unnest(CAST(:ranks AS text[]), CAST(:positions AS int[]), CAST(:min_personal AS bigint[]),
                         CAST(:min_team AS bigint[])) AS l (rank, pos, min_personal, min_team)
), held AS (
    SELECT d.id, d.rank, l.pos, l.min_personal, l.min_team FROM distributor d JOIN ladder l ON l.rank = d.rank
     WHERE d.status = 'active' AND l.pos > 0
), kept AS (
    SELECT h.id, h.rank, h.pos, h.min_personal, h.min_team,
           coalesce(sum(s.personal), 0) AS personal, coalesce(sum(s.team), 0) AS team
      FROM held h LEFT JOIN """ + SALES + """ s
        ON s.distributor_id = h.id
       AND s.day > (now() AT TIME ZONE 'UTC')::date - CAST(:days AS int) + CAST(:ahead AS int)
     GROUP BY h.id, h.rank, h.pos, h.min_personal, h.min_team
), falling AS (
    SELECT DISTINCT ON (k.id) k.*, l.rank AS to_rank
      FROM kept k JOIN ladder l ON k.personal >= l.min_personal AND k.team >= l.min_team
     ORDER BY k.id, l.pos DESC
)
SELECT f.id, 'rank_warning:' || f.id || ':' || f.rank || ':' || CAST(:week AS text),
       jsonb_build_object('rank', f.rank, 'to', f.to_rank, 'days', CAST(:ahead AS int),
                          'evaluate_on', CAST(:evaluate_on AS text),
                          'needed', concat_ws(' + ',
                              CASE WHEN f.personal < f.min_personal
                                   THEN to_char((f.min_personal - f.personal) / 100.0, 'FM999999999990.00') || ' personal' END,
                              CASE WHEN f.team < f.min_team
                                   THEN to_char((f.min_team - f.team) / 100.0, 'FM999999999990.00') || ' team' END))
  FROM falling f JOIN ladder cur ON cur.rank = f.rank
 WHERE (SELECT pos FROM ladder WHERE rank = f.to_rank) < cur.pos
"""


async def warn_downgrades(session: AsyncSession, settings: Settings, *, now: datetime | None = None) -> int:
    ladder = await ladder_at(session)
    now = now or datetime.now(UTC)
    ahead = settings.notify.downgrade_warning_days
    year, week, _ = now.isocalendar()
    params: dict[str, Any] = {
        "ranks": [s.rank for s in ladder.steps], "positions": [RANK_ORDER.index(s.rank) for s in ladder.steps],
        "min_personal": [s.min_personal for s in ladder.steps], "min_team": [s.min_team for s in ladder.steps],
        "days": ladder.period_days, "ahead": ahead, "week": f"{year}-W{week:02d}",
        "evaluate_on": (now + timedelta(days=ahead)).date().isoformat(),
    }
    return await fan_out_rows(session, rows=_AT_RISK, params=params, kind="rank_downgrade_warning")
