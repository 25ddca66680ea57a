"""Points reports (JSON, CSV, XLSX through reports.render): the points liability, points earned,
redeemed and expired per month, and the benefits in effect per rank. Each is one query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits import repository as benefits_repo
from distnet.benefits.rules import benefit_codes
from distnet.kit.money import format_amount
from distnet.ranks.ladder import RANK_ORDER

LIABILITY_COLUMNS = ["source", "lots", "members", "outstanding_points", "value"]
MONTHLY_COLUMNS = ["month", "earned", "reversed", "redeemed", "adjusted_out", "expired"]
BENEFITS_COLUMNS = ["rank", "members", "suspended", "discount_bps", "monthly_points", "earn_rate_bps",
                    "referral_points", "benefits"]


async def liability(session: AsyncSession) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    """Outstanding points by source, and what they are worth at the catalogue's point value."""
    cat, _ = await benefits_repo.catalogue_at(session)
    value = int(cat.point_value_minor)
    rows = (await session.execute(text(
        "SELECT source, count(*) AS lots, count(DISTINCT distributor_id) AS members, sum(remaining) AS points "
        "FROM points_lot WHERE remaining > 0 GROUP BY source ORDER BY source"))).all()
    debt = int(await session.scalar(text(
        "SELECT coalesce(-sum(balance), 0) FROM ledger_account WHERE currency = 'PTS' AND kind = 'points_owed'")) or 0)
    total = sum(int(r.points) for r in rows)
    items = [[r.source, int(r.lots), int(r.members), int(r.points), format_amount(int(r.points) * value)] for r in rows]
    summary = [("outstanding points", total), ("value", format_amount(total * value)),
               ("point value (minor units)", value), ("points debt", debt),
               ("catalogue version", cat.version)]
    return summary, items


async def by_month(session: AsyncSession, *, time_zone: str) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    """Points earned (lots by the month they were earned), reversed by refunds, redeemed, taken
    by adjustments and expired, per month of the ledger transaction in the platform's time zone."""
    rows = (await session.execute(text(
        """
        SELECT to_char(t.created_at AT TIME ZONE :tz, 'YYYY-MM') AS month,
               coalesce(sum(-p.amount) FILTER (WHERE a.kind = 'points_issued' AND p.amount < 0), 0) AS earned,
               coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_issued' AND t.kind = 'points.reversed'), 0)
                   AS reversed,
               coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_redeemed'), 0) AS redeemed,
               coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_issued' AND t.kind = 'points.adjustment'), 0)
                   AS adjusted_out,
               coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_expired'), 0) AS expired
          FROM ledger_posting p
          JOIN ledger_account a ON a.id = p.account_id AND a.currency = 'PTS' AND a.distributor_id IS NULL
          JOIN ledger_transaction t ON t.id = p.transaction_id
         GROUP BY 1 ORDER BY 1
        """), {"tz": time_zone})).all()
    items = [[r.month, int(r.earned), int(r.reversed), int(r.redeemed), int(r.adjusted_out), int(r.expired)]
             for r in rows]
    summary = [(name, sum(row[i] for row in items)) for i, name in enumerate(MONTHLY_COLUMNS) if i > 0]
    return summary, items


async def benefits_per_rank(session: AsyncSession) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    """Per rank: active members, those whose benefits a violation hold suspends, and what the
    catalogue in effect grants them."""
    cat, tiers = await benefits_repo.catalogue_at(session)
    counts = {r.rank: r for r in await session.execute(text(
        """
        SELECT d.rank, count(*) AS members,
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM hold h WHERE h.distributor_id = d.id
                                AND h.reason <> 'maintenance' AND h.lifted_at IS NULL AND h.started_at <= now()
                                AND (h.ends_at IS NULL OR h.ends_at > now()))) AS suspended
          FROM distributor d WHERE d.status = 'active' GROUP BY d.rank
        """))}
    items: list[list[Any]] = []
    for rank in RANK_ORDER:
        t = tiers.get(rank)
        c = counts.get(rank)
        items.append([rank, int(c.members) if c else 0, int(c.suspended) if c else 0,
                      t.discount_bps if t else 0, t.monthly_points if t else 0, t.earn_rate_bps if t else 0,
                      t.referral_points if t else 0, ", ".join(benefit_codes(t)) if t else ""])
    summary = [("catalogue version", cat.version), ("effective from", cat.effective_from.isoformat()),
               ("members", sum(int(r[1]) for r in items))]
    return summary, items
