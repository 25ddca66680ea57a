"""All SQL of benefits: catalogue versions and the member facts a benefit depends on."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits.rules import DEFAULT_CATALOGUE_NAME, DEFAULT_TIERS, Tier, tier_from_row

POINTS_MEMBER_ACCOUNTS = ("points", "points_owed")
POINTS_PLATFORM_ACCOUNTS = ("points_issued", "points_redeemed", "points_expired")
POINTS = "PTS"

# version 1 is written by migration 0110; a database emptied since (tests, a scratch benchmark)
# gets it back, with the platform's points accounts
_ENSURE_DEFAULT = text(
    """
    WITH cat AS (
        INSERT INTO benefit_catalogue (version, name, effective_from, created_by)
        SELECT 1, :name, '2000-01-01T00:00:00Z', 'default' WHERE NOT EXISTS (SELECT 1 FROM benefit_catalogue)
        ON CONFLICT (version) DO NOTHING
        RETURNING id
    )
    INSERT INTO benefit_tier (catalogue_id, rank, discount_bps, monthly_points, earn_rate_bps, referral_points, flags)
    SELECT cat.id, t.rank, t.discount, t.monthly, t.earn, t.referral, string_to_array(t.flags, ',')
      FROM cat, unnest(CAST(:ranks AS text[]), CAST(:discounts AS int[]), CAST(:monthly AS bigint[]),
                       CAST(:earn AS int[]), CAST(:referral AS bigint[]), CAST(:flags AS text[]))
           AS t(rank, discount, monthly, earn, referral, flags)
    """
)


_READY = text(
    "SELECT EXISTS (SELECT 1 FROM benefit_catalogue) AND (SELECT count(*) FROM ledger_account "
    "WHERE distributor_id IS NULL AND currency = 'PTS') >= :n"
)


_ENSURE_DEFAULT_ACCOUNTS = text(
    "INSERT INTO ledger_account (distributor_id, kind, currency, balance) "
    "SELECT NULL, k, 'PTS', 0 FROM unnest(CAST(:platform AS text[])) k ON CONFLICT DO NOTHING"
)


async def ensure_default(session: AsyncSession) -> None:
    """The default catalogue and the platform's points accounts, when missing (one read when not)."""
    if await session.scalar(_READY, {"n": len(POINTS_PLATFORM_ACCOUNTS)}):
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(7018)"))
    await session.execute(_ENSURE_DEFAULT_ACCOUNTS, {"platform": list(POINTS_PLATFORM_ACCOUNTS)})
    await session.execute(
        _ENSURE_DEFAULT,
        {
            "name": DEFAULT_CATALOGUE_NAME,
            "ranks": [t.rank for t in DEFAULT_TIERS],
            "discounts": [t.discount_bps for t in DEFAULT_TIERS],
            "monthly": [t.monthly_points for t in DEFAULT_TIERS],
            "earn": [t.earn_rate_bps for t in DEFAULT_TIERS],
            "referral": [t.referral_points for t in DEFAULT_TIERS],
            "flags": [",".join(t.flags) for t in DEFAULT_TIERS],
        },
    )


CATALOGUE_AT = """SELECT id FROM benefit_catalogue WHERE effective_from <= {at}
     ORDER BY effective_from DESC, version DESC LIMIT 1"""
"""The catalogue in effect at a moment: the newest version effective by then."""


async def catalogue_at(session: AsyncSession, at: Any = None) -> tuple[Any, dict[str, Tier]]:
    """(catalogue row, tiers by rank) in effect at ``at`` (now)."""
    row = (
        await session.execute(
            text(
                "SELECT id, version, name, effective_from, point_value_minor, referral_min_order FROM benefit_catalogue "
                "WHERE effective_from <= coalesce(CAST(:at AS timestamptz), now()) "
                "ORDER BY effective_from DESC, version DESC LIMIT 1"
            ),
            {"at": at},
        )
    ).first()
    if row is None:
        await ensure_default(session)
        return await catalogue_at(session, at)
    return row, await tiers_of(session, row.id)


async def tiers_of(session: AsyncSession, catalogue_id: int) -> dict[str, Tier]:
    rows = await session.execute(
        text(
            "SELECT rank, discount_bps, category_discounts, monthly_points, earn_rate_bps, referral_points, flags "
            "FROM benefit_tier WHERE catalogue_id = :c"
        ),
        {"c": catalogue_id},
    )
    return {r.rank: tier_from_row(r) for r in rows}


async def catalogues(session: AsyncSession) -> list[Any]:
    await ensure_default(session)
    return list(
        (
            await session.execute(
                text(
                    "SELECT id, version, name, effective_from, point_value_minor, referral_min_order, created_at, created_by "
                    "FROM benefit_catalogue ORDER BY version DESC"
                )
            )
        ).all()
    )


async def member(session: AsyncSession, distributor_id: int) -> Any:
    """The member's rank and since when, status, and active holds (violation or maintenance)."""
    return (
        await session.execute(
            text(
                """
        SELECT d.id, d.rank, coalesce(d.rank_since, d.joined_at) AS rank_since, d.status,
               coalesce((SELECT jsonb_agg(jsonb_build_object('id', h.id, 'reason', h.reason, 'since', h.started_at,
                                                             'ends_at', h.ends_at) ORDER BY h.started_at, h.id)
                           FROM hold h
                          WHERE h.distributor_id = d.id AND h.lifted_at IS NULL AND h.started_at <= now()
                            AND (h.ends_at IS NULL OR h.ends_at > now())), '[]'::jsonb) AS holds
          FROM distributor d WHERE d.id = :d
        """
            ),
            {"d": distributor_id},
        )
    ).first()


async def insert_catalogue(
    session: AsyncSession,
    *,
    name: str,
    effective_from: Any,
    point_value_minor: int,
    referral_min_order: int,
    created_by: str,
    tiers: list[Tier],
) -> Any:
    await session.execute(
        text("LOCK TABLE benefit_catalogue IN SHARE ROW EXCLUSIVE MODE")
    )  # versions in order
    row = (
        await session.execute(
            text(
                """
        INSERT INTO benefit_catalogue (version, name, effective_from, point_value_minor, referral_min_order, created_by)
        SELECT coalesce(max(version), 0) + 1, :name, :eff, :pv, :rmin, :by FROM benefit_catalogue
        RETURNING id, version, name, effective_from, point_value_minor, referral_min_order, created_at, created_by
        """
            ),
            {
                "name": name,
                "eff": effective_from,
                "pv": point_value_minor,
                "rmin": referral_min_order,
                "by": created_by,
            },
        )
    ).one()
    await session.execute(
        text(
            """
        INSERT INTO benefit_tier (catalogue_id, rank, discount_bps, category_discounts, monthly_points, earn_rate_bps,
                                  referral_points, flags)
        SELECT :c, t.rank, t.discount, t.cats, t.monthly, t.earn, t.referral,
               coalesce(string_to_array(nullif(t.flags, ''), ','), '{}')
          FROM jsonb_to_recordset(CAST(:tiers AS jsonb))
               AS t(rank text, discount int, cats jsonb, monthly bigint, earn int, referral bigint, flags text)
        """
        ),
        {"c": row.id, "tiers": _tiers_json(tiers)},
    )
    return row


def _tiers_json(tiers: list[Tier]) -> str:
    return json.dumps(
        [
            {
                "rank": t.rank,
                "discount": t.discount_bps,
                "cats": t.category_discounts,
                "monthly": t.monthly_points,
                "earn": t.earn_rate_bps,
                "referral": t.referral_points,
                "flags": ",".join(t.flags),
            }
            for t in tiers
        ]
    )


NOW = text("SELECT now()")


POINTS_BALANCES = text(
    "SELECT kind, balance FROM ledger_account WHERE distributor_id = :d AND currency = 'PTS'"
)
