"""Points reports (JSON, CSV, XLSX through reports.render): the points liability, points earned,
redeemed and expired per month, and the benefits in effect per rank. Each is one query."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits import repository as benefits_repo
from distnet.benefits.rules import benefit_codes
from distnet.kit.money import format_amount
from distnet.points import repository as repo
from distnet.ranks.ladder import RANK_ORDER

LIABILITY_COLUMNS = ["source", "lots", "members", "outstanding_points", "value"]
MONTHLY_COLUMNS = ["month", "earned", "reversed", "redeemed", "adjusted_out", "expired"]
BENEFITS_COLUMNS = [
    "rank",
    "members",
    "suspended",
    "discount_bps",
    "monthly_points",
    "earn_rate_bps",
    "referral_points",
    "benefits",
]


async def liability(session: AsyncSession) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    """Outstanding points by source, and what they are worth at the catalogue's point value."""
    cat, _ = await benefits_repo.catalogue_at(session)
    value = int(cat.point_value_minor)
    rows = (await session.execute(repo.LIABILITY_BY_SOURCE)).all()
    debt = int(await session.scalar(repo.POINTS_DEBT) or 0)
    total = sum(int(r.points) for r in rows)
    items = [
        [r.source, int(r.lots), int(r.members), int(r.points), format_amount(int(r.points) * value)]
        for r in rows
    ]
    summary = [
        ("outstanding points", total),
        ("value", format_amount(total * value)),
        ("point value (minor units)", value),
        ("points debt", debt),
        ("catalogue version", cat.version),
    ]
    return summary, items


async def by_month(session: AsyncSession, *, time_zone: str) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    """Points earned (lots by the month they were earned), reversed by refunds, redeemed, taken
    by adjustments and expired, per month of the ledger transaction in the platform's time zone."""
    rows = (await session.execute(repo.POINTS_BY_MONTH, {"tz": time_zone})).all()
    items = [
        [r.month, int(r.earned), int(r.reversed), int(r.redeemed), int(r.adjusted_out), int(r.expired)]
        for r in rows
    ]
    summary = [(name, sum(row[i] for row in items)) for i, name in enumerate(MONTHLY_COLUMNS) if i > 0]
    return summary, items


async def benefits_per_rank(session: AsyncSession) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    """Per rank: active members, those whose benefits a violation hold suspends, and what the
    catalogue in effect grants them."""
    cat, tiers = await benefits_repo.catalogue_at(session)
    counts = {r.rank: r for r in await session.execute(repo.MEMBERS_PER_RANK)}
    items: list[list[Any]] = []
    for rank in RANK_ORDER:
        t = tiers.get(rank)
        c = counts.get(rank)
        items.append(
            [
                rank,
                int(c.members) if c else 0,
                int(c.suspended) if c else 0,
                t.discount_bps if t else 0,
                t.monthly_points if t else 0,
                t.earn_rate_bps if t else 0,
                t.referral_points if t else 0,
                ", ".join(benefit_codes(t)) if t else "",
            ]
        )
    summary = [
        ("catalogue version", cat.version),
        ("effective from", cat.effective_from.isoformat()),
        ("members", sum(int(r[1]) for r in items)),
    ]
    return summary, items
