"""Ranks: upgrade at once inside the transaction that crosses a threshold (the next order already
earns the new rate), downgrade only at the periodic evaluation. Both are the same set-based
statement over the sales rollup (``SALES``: ``sales_daily`` plus the ``sales_delta`` rows not
folded yet); the ladder itself is pure (ranks/ladder.py)."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions import repository as commissions_repo
from distnet.commissions.rules import DEFAULT_RATES
from distnet.db import rowcount
from distnet.kit import pg
from distnet.kit.money import format_amount
from distnet.ranks.ladder import RANK_ORDER, Ladder, current_ladder, progress
from distnet.ranks.schemas import LevelRate, RankLadder, RankProgress, RankStep

SALES = "(SELECT * FROM sales_daily UNION ALL SELECT * FROM sales_delta)"
"""Sales per distributor and day: the folded rows and the appended deltas, to be summed."""

_FOLD = """
WITH moved AS (
    DELETE FROM sales_delta RETURNING distributor_id, day, personal, team
), agg AS (
    SELECT distributor_id, day, sum(personal)::bigint AS personal, sum(team)::bigint AS team
      FROM moved GROUP BY 1, 2
)
INSERT INTO sales_daily (distributor_id, day, personal, team)
SELECT * FROM agg ORDER BY distributor_id, day
ON CONFLICT (distributor_id, day) DO UPDATE
   SET personal = sales_daily.personal + EXCLUDED.personal, team = sales_daily.team + EXCLUDED.team
"""

# ``{scope}``: a query of the distributor ids to evaluate (NULL scope = everyone).
_APPLY = """
WITH ladder(rank, pos, min_personal, min_team) AS (
    SELECT * FROM unnest(CAST(:ranks AS text[]), CAST(:positions AS int[]),
                         CAST(:min_personal AS bigint[]), CAST(:min_team AS bigint[]))
), scope AS (
    SELECT d.id, d.rank FROM distributor d
     WHERE d.status = 'active' {scope}
), totals AS (
    SELECT scope.id, scope.rank, coalesce(sum(s.personal), 0) AS personal, coalesce(sum(s.team), 0) AS team
      FROM scope LEFT JOIN """ + SALES + """ s
        ON s.distributor_id = scope.id AND s.day > distnet_local_day(now()) - CAST(:days AS int)
     GROUP BY scope.id, scope.rank
), target AS (
    SELECT DISTINCT ON (t.id) t.id, t.rank AS old_rank, l.rank AS new_rank, l.pos AS new_pos,
           t.personal, t.team
      FROM totals t JOIN ladder l ON t.personal >= l.min_personal AND t.team >= l.min_team
     ORDER BY t.id, l.pos DESC
), changed AS (
    SELECT target.* FROM target JOIN ladder cur ON cur.rank = target.old_rank
     WHERE target.new_pos > cur.pos OR (NOT :upgrade_only AND target.new_pos < cur.pos)
     ORDER BY target.id
), upd AS (
    UPDATE distributor d SET rank = changed.new_rank FROM changed WHERE d.id = changed.id
    RETURNING d.id
), audit AS (
    INSERT INTO audit_log (actor_key_id, actor, action, subject_type, subject_id, before, after)
    SELECT NULL, :actor, 'rank.changed', 'distributor', c.id::text, jsonb_build_object('rank', c.old_rank),
           jsonb_build_object('rank', c.new_rank, 'personal_sales', c.personal, 'team_sales', c.team,
                              'period_days', CAST(:days AS int), 'reason', CAST(:reason AS text))
      FROM changed c
), events AS (
    INSERT INTO outbox_event (id, topic, distributor_id, payload)
    SELECT gen_random_uuid(), 'rank.changed', c.id,
           jsonb_build_object('distributor_id', c.id, 'from', c.old_rank, 'to', c.new_rank, 'reason', CAST(:reason AS text))
      FROM changed c
)
SELECT id, old_rank, new_rank FROM changed
"""


def _ladder_params(ladder: Ladder) -> dict[str, Any]:
    return {
        "ranks": [s.rank for s in ladder.steps],
        "positions": [RANK_ORDER.index(s.rank) for s in ladder.steps],
        "min_personal": [s.min_personal for s in ladder.steps],
        "min_team": [s.min_team for s in ladder.steps],
        "days": ladder.period_days,
    }


@functools.lru_cache(maxsize=16)
def _apply_text(scope: str | None) -> TextClause:
    return text(_APPLY.format(scope=f"AND d.id IN ({scope})" if scope else ""))


async def apply_ranks(
    session: AsyncSession, *, scope: str | None = None, params: dict[str, Any] | None = None,
    upgrade_only: bool, reason: str, ladder: Ladder | None = None,
) -> list[dict[str, Any]]:
    ladder = ladder or current_ladder()
    changed = await pg.fetch(
        session, _apply_text(scope),
        {**(params or {}), **_ladder_params(ladder), "upgrade_only": upgrade_only, "reason": reason,
         "actor": "system:ranks"},
    )
    return [r._asdict() for r in changed]


async def upgrade_after_orders(session: AsyncSession, orders: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The cheap check on order accept: the sellers and their (at most three) nearest uplines."""
    scope = (
        f"SELECT seller_id FROM orders WHERE id IN ({orders}) UNION "
        f"SELECT u.ancestor_id FROM distributor_upline u WHERE u.distributor_id IN "
        f"(SELECT seller_id FROM orders WHERE id IN ({orders}))"
    )
    return await apply_ranks(session, scope=scope, params=params, upgrade_only=True, reason="threshold_crossed")


async def fold_sales(session: AsyncSession) -> int:
    """Move the appended sales deltas into ``sales_daily`` (scheduler job ``fold_sales``): one
    statement, so every reader sees the rows either here or there, never both or neither. Only
    this job and the evaluation lock ``sales_daily`` rows, for the length of one statement."""
    result = await session.execute(text(_FOLD))
    return rowcount(result)


async def evaluate_ranks(session: AsyncSession) -> list[dict[str, Any]]:
    """Periodic evaluation (for the scheduler): every active distributor, upgrades and downgrades."""
    await fold_sales(session)
    return await apply_ranks(session, upgrade_only=False, reason="periodic_evaluation")


async def sales_totals(session: AsyncSession, distributor_id: int, days: int) -> tuple[int, int]:
    row = (
        await session.execute(
            text(
                """
                SELECT coalesce(sum(personal), 0), coalesce(sum(team), 0) FROM """ + SALES + """ s
                 WHERE distributor_id = :d AND day > distnet_local_day(now()) - CAST(:days AS int)
                """
            ),
            {"d": distributor_id, "days": days},
        )
    ).one()
    return int(row[0]), int(row[1])


async def rank_progress(session: AsyncSession, distributor_id: int, rank: str) -> RankProgress:
    ladder = current_ladder()
    personal, team = await sales_totals(session, distributor_id, ladder.period_days)
    p = progress(ladder, rank, personal, team)
    return RankProgress(rank=p.rank, next_rank=p.next_rank, period_days=p.period_days,
                        personal_sales=format_amount(p.personal_sales), team_sales=format_amount(p.team_sales),
                        personal_needed=format_amount(p.personal_needed), team_needed=format_amount(p.team_needed),
                        explanation=_explain_progress(p))


def _explain_progress(p: Any) -> str:
    if p.next_rank is None:
        return f"{p.rank} is the highest rank"
    if p.personal_needed == 0 and p.team_needed == 0:
        return (f"thresholds for {p.next_rank} are met: the upgrade applies with your next order or at the "
                f"next evaluation")
    parts = []
    if p.personal_needed:
        parts.append(f"{format_amount(p.personal_needed)} more personal sales")
    if p.team_needed:
        parts.append(f"{format_amount(p.team_needed)} more team sales")
    return f"{' and '.join(parts)} in the last {p.period_days} days to reach {p.next_rank}"


async def ladder_view(session: AsyncSession) -> RankLadder:
    """The public ladder with what each rank earns under the plan in effect now."""
    ladder = current_ladder()
    plan = await commissions_repo.plan_at(session, await session.scalar(text("SELECT now()")))
    if plan is not None:
        rates = await commissions_repo.plan_rates(session, plan["id"])
    else:  # an empty database: the default plan is what the first order will be attributed under
        rates = [{"level": lv, "rank": rk, "rate_bps": b} for lv, rs in DEFAULT_RATES.items() for rk, b in rs.items()]
    return RankLadder(
        period_days=ladder.period_days,
        rule="a rank is reached when both personal and team sales over the period reach its thresholds; "
             "upgrades apply at once, downgrades at the periodic evaluation",
        plan_version=plan["version"] if plan else None,
        items=[
            RankStep(rank=s.rank, min_personal_sales=format_amount(s.min_personal),
                     min_team_sales=format_amount(s.min_team),
                     rates=[LevelRate(level=r["level"], rate_bps=r["rate_bps"]) for r in rates
                            if r["rank"] == s.rank and (plan is None or r["level"] <= plan["max_levels"])])
            for s in ladder.steps
        ],
    )
