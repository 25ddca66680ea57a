"""Ranks: upgrade at once inside the transaction that crosses a threshold (the next order already
earns the new rate), downgrade only at the periodic evaluation. Both are the same set-based
statement over the sales rollup (``SALES``: ``sales_daily`` plus the ``sales_delta`` rows not
folded yet); the ladder itself is pure (ranks/ladder.py)."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions import repository as commissions_repo
from distnet.commissions.rules import DEFAULT_RATES
from distnet.db import rowcount
from distnet.kit import audit, outbox, pg
from distnet.kit.errors import ValidationFailed
from distnet.kit.keys import Principal
from distnet.kit.money import format_amount, parse_amount
from distnet.models.network import RANKS
from distnet.network.errors import DistributorNotFound
from distnet.notifications.repository import fan_out_rows
from distnet.ranks import schemas
from distnet.ranks.errors import LadderInvalid
from distnet.ranks.ladder import Ladder, RankStep, check_steps, current_ladder, progress
from distnet.ranks.schemas import LevelRate, RankLadder, RankProgress
from distnet.ranks.schemas import RankStep as LadderRankStep

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

# The ladder in effect (``cfg``: the newest stored version effective now, else the built-in or
# configured default bound as parameters) and its steps (``ladder``), read inside the statement
# that uses it: no extra round trip on the order path.
LADDER_CTES = """stored AS (
    SELECT version, period_days, ranks, min_personal, min_team FROM rank_ladder
     WHERE effective_from <= now() ORDER BY effective_from DESC, version DESC LIMIT 1
), cfg AS (
    SELECT * FROM stored
    UNION ALL
    SELECT 0, CAST(:days AS int), CAST(:ranks AS text[]), CAST(:min_personal AS bigint[]), CAST(:min_team AS bigint[])
     WHERE NOT EXISTS (SELECT 1 FROM stored)
), ladder(rank, pos, min_personal, min_team) AS (
    SELECT u.rank, array_position(ARRAY['member', 'silver', 'gold', 'platinum'], CAST(u.rank AS text)) - 1,
           u.min_personal, u.min_team
      FROM cfg, unnest(cfg.ranks, cfg.min_personal, cfg.min_team) AS u(rank, min_personal, min_team)
)"""


def change_ctes(
    totals: str, *, prefix: str = "", downgrades: str = "NOT :upgrade_only", reason: str = ":reason"
) -> str:
    """The CTEs (text after ``, ``) that move ranks: from ``totals`` (id, rank, personal, team: the
    members' sales over the ladder's period, beside ``LADDER_CTES``) to each member's highest
    qualified step (``{prefix}target``), the members whose rank moves (``{prefix}changed``: up,
    and down where ``downgrades`` holds), their update, audit row and ``rank.changed`` event.
    ``reason`` is an SQL text expression. One text for the evaluation (:func:`apply_ranks`) and
    the single order's own statement (orders.repository.SINGLE)."""
    changed = f"{prefix}changed"
    return (
        f"""{prefix}target AS (
    SELECT DISTINCT ON (t.id) t.id, t.rank AS old_rank, l.rank AS new_rank, l.pos AS new_pos,
           t.personal, t.team
      FROM {totals} t JOIN ladder l ON t.personal >= l.min_personal AND t.team >= l.min_team
     ORDER BY t.id, l.pos DESC
), {changed} AS (
    SELECT target.* FROM {prefix}target target JOIN ladder cur ON cur.rank = target.old_rank
     WHERE target.new_pos > cur.pos OR ({downgrades} AND target.new_pos < cur.pos)
     ORDER BY target.id
), {prefix}upd AS (
    UPDATE distributor d SET rank = changed.new_rank, rank_since = now() FROM {changed} changed WHERE d.id = changed.id
    RETURNING d.id
), {prefix}audit AS (
    INSERT INTO audit_log (actor_key_id, actor, action, subject_type, subject_id, before, after)
    SELECT NULL, 'system:ranks', 'rank.changed', 'distributor', c.id::text, jsonb_build_object('rank', c.old_rank),
           jsonb_build_object('rank', c.new_rank, 'personal_sales', c.personal, 'team_sales', c.team,
                              'period_days', (SELECT period_days FROM cfg), 'ladder_version', (SELECT version FROM cfg),
                              'reason', CAST({reason} AS text))
      FROM {changed} c
), {prefix}events AS (
"""
        + outbox.insert_events(
            topic="rank.changed",
            source=f"{changed} c",
            distributor_id="c.id",
            payload="jsonb_build_object('distributor_id', c.id, 'from', c.old_rank, 'to', c.new_rank, "
            f"'reason', CAST({reason} AS text))",
        )
        + "\n)"
    )


# ``{scope}``: a query of the distributor ids to evaluate (NULL scope = everyone).
_APPLY = (
    """
WITH """
    + LADDER_CTES
    + """, scope AS (
    SELECT d.id, d.rank FROM distributor d
     WHERE d.status = 'active' {scope}
), totals AS (
    SELECT scope.id, scope.rank, coalesce(sum(s.personal), 0) AS personal, coalesce(sum(s.team), 0) AS team
      FROM scope LEFT JOIN """
    + SALES
    + """ s
        ON s.distributor_id = scope.id AND s.day > distnet_local_day(now()) - (SELECT period_days FROM cfg)
     GROUP BY scope.id, scope.rank
), """
    + change_ctes("totals").replace("{", "{{").replace("}", "}}")
    + """
SELECT id, old_rank, new_rank FROM changed
"""
)


def ladder_params(ladder: Ladder | None = None) -> dict[str, Any]:
    """The parameters of ``LADDER_CTES`` (``ladder``: the default, a stored version wins in SQL)."""
    return _ladder_params(ladder or current_ladder())


def _ladder_params(ladder: Ladder) -> dict[str, Any]:
    return {
        "ranks": [s.rank for s in ladder.steps],
        "min_personal": [s.min_personal for s in ladder.steps],
        "min_team": [s.min_team for s in ladder.steps],
        "days": ladder.period_days,
    }


@functools.lru_cache(maxsize=16)
def _apply_text(scope: str | None) -> TextClause:
    return outbox.statement(_APPLY.format(scope=f"AND d.id IN ({scope})" if scope else ""))


async def apply_ranks(
    session: AsyncSession,
    *,
    scope: str | None = None,
    params: dict[str, Any] | None = None,
    upgrade_only: bool,
    reason: str,
    ladder: Ladder | None = None,
) -> list[dict[str, Any]]:
    ladder = ladder or current_ladder()  # the default: a stored ladder version wins inside the statement
    changed = await pg.fetch(
        session,
        _apply_text(scope),
        {
            **(params or {}),
            **_ladder_params(ladder),
            "upgrade_only": upgrade_only,
            "reason": reason,
        },
    )
    return [r._asdict() for r in changed]


async def upgrade_after_orders(
    session: AsyncSession, *, orders: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """The cheap check on order accept: the sellers and their (at most three) nearest uplines."""
    scope = (
        f"SELECT seller_id FROM orders WHERE id IN ({orders}) UNION "
        f"SELECT u.ancestor_id FROM distributor_upline u WHERE u.distributor_id IN "
        f"(SELECT seller_id FROM orders WHERE id IN ({orders}))"
    )
    return await apply_ranks(
        session, scope=scope, params=params, upgrade_only=True, reason="threshold_crossed"
    )


# After a refund: the seller and its nearest uplines whose sales over the period no longer reach
# their rank's thresholds (the downgrade itself waits for the periodic evaluation) are told now
# what they need to keep it: one notice per member and refund.
_REFUND_AT_RISK = (
    """
WITH """
    + LADDER_CTES
    + """, scope AS (
    SELECT d.id, d.rank FROM distributor d
     WHERE d.status = 'active'
       AND d.id IN (SELECT CAST(:seller AS bigint) UNION
                    SELECT ancestor_id FROM distributor_upline WHERE distributor_id = CAST(:seller AS bigint))
), totals AS (
    SELECT scope.id, scope.rank, coalesce(sum(s.personal), 0) AS personal, coalesce(sum(s.team), 0) AS team
      FROM scope LEFT JOIN """
    + SALES
    + """ s
        ON s.distributor_id = scope.id AND s.day > distnet_local_day(now()) - (SELECT period_days FROM cfg)
     GROUP BY scope.id, scope.rank
), falling AS (
    SELECT DISTINCT ON (t.id) t.id, t.rank, t.personal, t.team, l.rank AS to_rank, cur.min_personal, cur.min_team
      FROM totals t JOIN ladder cur ON cur.rank = t.rank
      JOIN ladder l ON t.personal >= l.min_personal AND t.team >= l.min_team
     WHERE t.personal < cur.min_personal OR t.team < cur.min_team
     ORDER BY t.id, l.pos DESC
)
SELECT f.id, 'rank_refund_warning:' || f.id || ':' || CAST(:refund_id AS text),
       jsonb_build_object('rank', f.rank, 'to', f.to_rank, 'days', (SELECT period_days FROM cfg),
                          'refund_id', CAST(:refund_id AS bigint),
                          'needed', concat_ws(' + ',
                              CASE WHEN f.personal < f.min_personal
                                   THEN to_char((f.min_personal - f.personal) / 100.0, 'FM999999999990.00') || ' personal' END,
                              CASE WHEN f.team < f.min_team
                                   THEN to_char((f.min_team - f.team) / 100.0, 'FM999999999990.00') || ' team' END))
  FROM falling f
"""
)


async def warn_after_refund(session: AsyncSession, *, seller_id: int, refund_id: int) -> int:
    """Warn the members whose rank a refund put below its thresholds (seed 003: a return that
    drops spending below a tier's threshold is reflected; the member hears it before the
    evaluation downgrades them)."""
    return await fan_out_rows(
        session,
        rows=_REFUND_AT_RISK,
        params={**_ladder_params(current_ladder()), "seller": seller_id, "refund_id": refund_id},
        kind="rank_refund_warning",
    )


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


async def sales_totals(session: AsyncSession, *, distributor_id: int, days: int) -> tuple[int, int]:
    row = (
        await session.execute(
            text(
                """
                SELECT coalesce(sum(personal), 0), coalesce(sum(team), 0) FROM """
                + SALES
                + """ s
                 WHERE distributor_id = :d AND day > distnet_local_day(now()) - CAST(:days AS int)
                """
            ),
            {"d": distributor_id, "days": days},
        )
    ).one()
    return int(row[0]), int(row[1])


async def rank_progress(session: AsyncSession, *, distributor_id: int, rank: str) -> RankProgress:
    ladder = await ladder_at(session)
    personal, team = await sales_totals(session, distributor_id=distributor_id, days=ladder.period_days)
    return progress_view(ladder, rank, personal, team)


def progress_view(ladder: Ladder, rank: str, personal: int, team: int) -> RankProgress:
    """A member's progress to the next rank, from the ladder in effect and its sales over the period."""
    p = progress(ladder, rank, personal, team)
    return RankProgress(
        rank=p.rank,
        next_rank=p.next_rank,
        period_days=p.period_days,
        personal_sales=format_amount(p.personal_sales),
        team_sales=format_amount(p.team_sales),
        personal_needed=format_amount(p.personal_needed),
        team_needed=format_amount(p.team_needed),
        explanation=_explain_progress(p),
    )


def _explain_progress(p: Any) -> str:
    if p.next_rank is None:
        return f"{p.rank} is the highest rank"
    if p.personal_needed == 0 and p.team_needed == 0:
        return (
            f"thresholds for {p.next_rank} are met: the upgrade applies with your next order or at the "
            f"next evaluation"
        )
    parts = []
    if p.personal_needed:
        parts.append(f"{format_amount(p.personal_needed)} more personal sales")
    if p.team_needed:
        parts.append(f"{format_amount(p.team_needed)} more team sales")
    return f"{' and '.join(parts)} in the last {p.period_days} days to reach {p.next_rank}"


async def ladder_view(session: AsyncSession) -> RankLadder:
    """The public ladder with what each rank earns under the plan in effect now."""
    ladder = await ladder_at(session)
    plan = await commissions_repo.plan_at(session, await session.scalar(text("SELECT now()")))
    if plan is not None:
        rates = await commissions_repo.plan_rates(session, plan["id"])
    else:  # an empty database: the default plan is what the first order will be attributed under
        rates = [
            {"level": lv, "rank": rk, "rate_bps": b}
            for lv, rs in DEFAULT_RATES.items()
            for rk, b in rs.items()
        ]
    return RankLadder(
        period_days=ladder.period_days,
        ladder_version=ladder.version,
        rule="a rank is reached when both personal and team sales over the period reach its thresholds; "
        "upgrades apply at once, downgrades at the periodic evaluation",
        plan_version=plan["version"] if plan else None,
        items=[
            LadderRankStep(
                rank=s.rank,
                min_personal_sales=format_amount(s.min_personal),
                min_team_sales=format_amount(s.min_team),
                rates=[
                    LevelRate(level=r["level"], rate_bps=r["rate_bps"])
                    for r in rates
                    if r["rank"] == s.rank and (plan is None or r["level"] <= plan["max_levels"])
                ],
            )
            for s in ladder.steps
        ],
    )


# --------------------------------------------------------------------------- ladder versions

_LADDER_AT = text(
    """
    SELECT version, period_days, ranks, min_personal, min_team, effective_from FROM rank_ladder
     WHERE effective_from <= coalesce(CAST(:at AS timestamptz), now())
     ORDER BY effective_from DESC, version DESC LIMIT 1
    """
)


def _ladder_of(row: Any) -> Ladder:
    return ladder_of(
        row.version, row.period_days, row.ranks, row.min_personal, row.min_team, row.effective_from
    )


def ladder_of(
    version: int,
    period_days: int,
    ranks: list[str],
    min_personal: list[int],
    min_team: list[int],
    effective_from: Any,
) -> Ladder:
    """A stored ladder version (a ``rank_ladder`` row's columns)."""
    steps = tuple(RankStep(r, int(p), int(t)) for r, p, t in zip(ranks, min_personal, min_team, strict=True))
    return Ladder(steps=steps, period_days=period_days, version=version, effective_from=effective_from)


async def ladder_at(session: AsyncSession, *, at: Any = None) -> Ladder:
    """The ladder in effect at ``at`` (now): the newest stored version effective by then, else the
    built-in (or ``DISTNET_RANK_LADDER``) default as version 0."""
    row = (await session.execute(_LADDER_AT, {"at": at})).first()
    return current_ladder() if row is None else _ladder_of(row)


async def ladder_versions(session: AsyncSession) -> schemas.LadderVersions:
    active = await ladder_at(session)
    rows = (
        await session.execute(
            text(
                "SELECT id, version, name, period_days, ranks, min_personal, min_team, effective_from, created_at, created_by "
                "FROM rank_ladder ORDER BY version DESC"
            )
        )
    ).all()
    default = current_ladder()
    items = [
        ladder_item(_ladder_of(r), name=r.name, created_by=r.created_by, active=r.version == active.version)
        for r in rows
    ]
    items.append(
        ladder_item(
            default,
            name="built-in default (DISTNET_RANK_LADDER or the code's ladder)",
            created_by=None,
            active=active.version == 0,
        )
    )
    return schemas.LadderVersions(items=items, active_version=active.version)


def ladder_item(ladder: Ladder, *, name: str, created_by: str | None, active: bool) -> schemas.LadderVersion:
    return schemas.LadderVersion(
        version=ladder.version,
        name=name,
        period_days=ladder.period_days,
        effective_from=ladder.effective_from,
        created_by=created_by,
        active=active,
        steps=[
            schemas.LadderStep(
                rank=s.rank, min_personal=format_amount(s.min_personal), min_team=format_amount(s.min_team)
            )
            for s in ladder.steps
        ],
    )


async def create_ladder(
    session: AsyncSession, *, principal: Principal, data: schemas.LadderCreate
) -> schemas.LadderVersion:
    """A new ladder version from ``effective_from`` (now by default; never in the past: ranks
    already given under the previous version would disagree with it)."""
    errors: list[dict[str, str]] = []
    steps = []
    for i, st in enumerate(data.steps):
        try:
            steps.append(
                RankStep(
                    st.rank,
                    parse_amount(st.min_personal, field=f"steps[{i}].min_personal", allow_zero=True),
                    parse_amount(st.min_team, field=f"steps[{i}].min_team", allow_zero=True),
                )
            )
        except ValidationFailed as exc:
            errors.extend(exc.extra["errors"])
    if not errors:
        errors = check_steps(tuple(steps))
    now = await session.scalar(text("SELECT now()"))
    effective_from = data.effective_from or now
    if effective_from < now - timedelta(minutes=5):
        errors.append({"field": "effective_from", "message": "a ladder cannot take effect in the past"})
    if errors:
        raise LadderInvalid(errors[0]["message"], errors=errors)
    await session.execute(text("LOCK TABLE rank_ladder IN SHARE ROW EXCLUSIVE MODE"))  # versions in order
    version = int(await session.scalar(text("SELECT coalesce(max(version), 0) + 1 FROM rank_ladder")) or 1)
    await session.execute(
        text(
            "INSERT INTO rank_ladder (version, name, period_days, ranks, min_personal, min_team, effective_from, created_by) "
            "VALUES (:v, :name, :days, :ranks, :mp, :mt, :eff, :by)"
        ),
        {
            "v": version,
            "name": data.name.strip(),
            "days": data.period_days,
            "ranks": [s.rank for s in steps],
            "mp": [s.min_personal for s in steps],
            "mt": [s.min_team for s in steps],
            "eff": effective_from,
            "by": principal.actor,
        },
    )
    ladder = Ladder(
        steps=tuple(steps), period_days=data.period_days, version=version, effective_from=effective_from
    )
    item = ladder_item(ladder, name=data.name.strip(), created_by=principal.actor, active=False)
    await audit.record(
        session,
        principal,
        "rank_ladder.created",
        "rank_ladder",
        version,
        after={
            "version": version,
            "period_days": data.period_days,
            "effective_from": effective_from.isoformat(),
            "steps": [msgspec.to_builtins(s) for s in item.steps],
        },
    )
    return item


async def correct_rank(
    session: AsyncSession, *, principal: Principal, distributor_id: int, data: schemas.RankCorrection
) -> schemas.RankCorrected:
    """An admin sets a member's rank, with a reason (audited, ``rank.changed`` event). Benefits
    follow at once; the next periodic evaluation judges the member by the ladder again."""
    if data.rank not in RANKS:
        raise ValidationFailed(f"rank must be one of {', '.join(RANKS)}", field="rank")
    row = (
        await session.execute(
            text("SELECT rank FROM distributor WHERE id = :d AND status <> 'erased' FOR UPDATE"),
            {"d": distributor_id},
        )
    ).first()
    if row is None:
        raise DistributorNotFound(f"no distributor {distributor_id}")
    since = await session.scalar(
        text(
            "UPDATE distributor SET rank = CAST(:r AS varchar), rank_since = CASE WHEN rank = CAST(:r AS varchar) "
            "THEN rank_since ELSE now() END "
            "WHERE id = :d RETURNING coalesce(rank_since, joined_at)"
        ),
        {"r": data.rank, "d": distributor_id},
    )
    await audit.record(
        session,
        principal,
        "rank.corrected",
        "distributor",
        distributor_id,
        before={"rank": row.rank},
        after={"rank": data.rank, "reason": data.reason},
    )
    if row.rank != data.rank:
        await outbox.emit(
            session,
            "rank.changed",
            {
                "distributor_id": distributor_id,
                "from": row.rank,
                "to": data.rank,
                "reason": "admin_correction",
            },
            distributor_id=distributor_id,
        )
    return schemas.RankCorrected(
        distributor_id=distributor_id,
        previous_rank=row.rank,
        rank=data.rank,
        rank_since=since,
        reason=data.reason,
        note="the rank applies at once; the periodic evaluation judges it by the ladder again",
    )
