"""Member benefits: versioned catalogues (admin), and a member's benefits derived at read time
from their rank, the catalogue in effect and their holds, so a rank change is in effect in the
same transaction that makes it (seed 000: no sync, no cache to refresh). A violation hold
suspends benefits and points earning; a maintenance hold does not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits import repository as repo
from distnet.benefits import schemas
from distnet.benefits.errors import BenefitNotFound, CatalogueInvalid
from distnet.benefits.rules import AMOUNT_BENEFITS, Tier, benefit_codes, member_price
from distnet.kit import audit
from distnet.kit.errors import ValidationFailed
from distnet.kit.keys import Principal
from distnet.kit.money import format_amount, parse_amount
from distnet.models.network import RANKS, VIOLATION_REASONS
from distnet.network.errors import DistributorNotFound
from distnet.ranks import service as ranks
from distnet.ranks.ladder import RANK_ORDER

# --------------------------------------------------------------------------- catalogue versions


def tier_view(t: Tier) -> schemas.Tier:
    return schemas.Tier(
        rank=t.rank,
        discount_bps=t.discount_bps,
        category_discounts=dict(t.category_discounts),
        monthly_points=t.monthly_points,
        earn_rate_bps=t.earn_rate_bps,
        referral_points=t.referral_points,
        flags=list(t.flags),
        benefits=benefit_codes(t),
    )


def _catalogue_view(row: Any, tiers: dict[str, Tier], active_id: int | None) -> schemas.Catalogue:
    return schemas.Catalogue(
        version=row.version,
        name=row.name,
        effective_from=row.effective_from,
        point_value_minor=int(row.point_value_minor),
        referral_min_order=format_amount(int(row.referral_min_order)),
        created_by=row.created_by,
        active=row.id == active_id,
        tiers=[tier_view(tiers[r]) for r in RANK_ORDER if r in tiers],
    )


async def list_catalogues(session: AsyncSession) -> schemas.CatalogueList:
    rows = await repo.catalogues(session)
    active, _ = await repo.catalogue_at(session)
    return schemas.CatalogueList(
        items=[_catalogue_view(r, await repo.tiers_of(session, r.id), active.id) for r in rows],
        active_version=active.version,
    )


async def create_catalogue(
    session: AsyncSession, *, principal: Principal, data: schemas.CatalogueCreate
) -> schemas.Catalogue:
    """A new catalogue version from ``effective_from`` (now by default, never in the past): one
    tier per rank."""
    errors: list[dict[str, str]] = []
    seen = [t.rank for t in data.tiers]
    for i, t in enumerate(data.tiers):
        if t.rank not in RANKS:
            errors.append({"field": f"tiers[{i}].rank", "message": f"rank must be one of {', '.join(RANKS)}"})
    if not errors and sorted(seen, key=RANK_ORDER.index) != list(RANK_ORDER):
        errors.append({"field": "tiers", "message": f"one tier for each rank: {', '.join(RANKS)}"})
    try:
        referral_min = parse_amount(data.referral_min_order, field="referral_min_order", allow_zero=True)
    except ValidationFailed as exc:
        errors.extend(exc.extra["errors"])
        referral_min = 0
    now = await session.scalar(repo.NOW)
    effective_from = data.effective_from or now
    if effective_from < now - timedelta(minutes=5):
        errors.append({"field": "effective_from", "message": "a catalogue cannot take effect in the past"})
    if errors:
        raise CatalogueInvalid(errors[0]["message"], errors=errors)
    await repo.ensure_default(session)  # version 1 keeps covering the time before this one
    tiers = [
        Tier(
            rank=t.rank,
            discount_bps=t.discount_bps,
            monthly_points=t.monthly_points,
            earn_rate_bps=t.earn_rate_bps,
            referral_points=t.referral_points,
            flags=tuple(dict.fromkeys(t.flags)),
            category_discounts=dict(t.category_discounts),
        )
        for t in data.tiers
    ]
    row = await repo.insert_catalogue(
        session,
        name=data.name.strip(),
        effective_from=effective_from,
        point_value_minor=data.point_value_minor,
        referral_min_order=referral_min,
        created_by=principal.actor,
        tiers=tiers,
    )
    view = _catalogue_view(row, {t.rank: t for t in tiers}, None)
    await audit.record(
        session,
        principal,
        "benefit_catalogue.created",
        "benefit_catalogue",
        row.version,
        after={
            "version": row.version,
            "effective_from": effective_from.isoformat(),
            "tiers": [
                {
                    "rank": t.rank,
                    "discount_bps": t.discount_bps,
                    "category_discounts": t.category_discounts,
                    "monthly_points": t.monthly_points,
                    "earn_rate_bps": t.earn_rate_bps,
                    "referral_points": t.referral_points,
                    "flags": list(t.flags),
                }
                for t in tiers
            ],
        },
    )
    return view


# --------------------------------------------------------------------------- a member's benefits


def _hold_ref(h: dict[str, Any]) -> schemas.HoldRef:
    return schemas.HoldRef(
        id=h["id"],
        reason=h["reason"],
        since=h["since"],
        ends_at=h["ends_at"],
        suspends_benefits=h["reason"] in VIOLATION_REASONS,
    )


def _benefits_of(tier: Tier) -> list[tuple[str, str, Any]]:
    """(code, kind, value) of every benefit the tier grants."""
    out: list[tuple[str, str, Any]] = []
    if tier.discount_bps or tier.category_discounts:
        out.append(
            (
                "discount",
                "discount",
                {"discount_bps": tier.discount_bps, "category_discounts": dict(tier.category_discounts)},
            )
        )
    if tier.monthly_points:
        out.append(("monthly_points", "points", {"points_per_month": tier.monthly_points}))
    if tier.earn_rate_bps:
        out.append(
            (
                "points_earning",
                "points",
                {"earn_rate_bps": tier.earn_rate_bps, "points_per_100": tier.earn_rate_bps * 100 // 10_000},
            )
        )
    if tier.referral_points:
        out.append(("referral_points", "points", {"points_per_recruit": tier.referral_points}))
    out.extend((flag, "flag", True) for flag in tier.flags)
    return out


async def _member(session: AsyncSession, *, distributor_id: int) -> Any:
    m = await repo.member(session, distributor_id)
    if m is None:
        raise DistributorNotFound(f"no distributor {distributor_id}")
    return m


async def my_benefits(session: AsyncSession, *, distributor_id: int) -> schemas.MyBenefits:
    m = await _member(session, distributor_id=distributor_id)
    cat, tiers = await repo.catalogue_at(session)
    holds = [_hold_ref(h) for h in m.holds]
    suspending = next((h for h in holds if h.suspends_benefits), None)
    since = max(m.rank_since, cat.effective_from)
    tier = tiers.get(m.rank)
    items = [
        schemas.Benefit(
            code=code,
            kind=kind,
            value=value,
            in_effect=suspending is None and m.status == "active",
            since=since if suspending is None else None,
            suspended_by=suspending,
        )
        for code, kind, value in (_benefits_of(tier) if tier else [])
    ]
    balance, debt = await points_balance(session, distributor_id=distributor_id)
    return schemas.MyBenefits(
        distributor_id=m.id,
        rank=m.rank,
        rank_since=m.rank_since,
        catalogue_version=cat.version,
        catalogue_effective_from=cat.effective_from,
        suspended=suspending is not None,
        holds=holds,
        items=items,
        points_balance=balance,
        points_debt=debt,
    )


async def points_balance(session: AsyncSession, *, distributor_id: int) -> tuple[int, int]:
    """(spendable points, points debt as a positive number)."""
    rows: dict[str, int] = dict((await session.execute(repo.POINTS_BALANCES, {"d": distributor_id})).all())
    return int(rows.get("points", 0)), -int(rows.get("points_owed", 0))


async def explain(session: AsyncSession, *, distributor_id: int, code: str) -> schemas.Explanation:
    """Why ``code`` is or is not in effect: the rank and since when, the catalogue version, the
    lowest rank granting it and the thresholds still missing, the holds that suspend it (and
    those that do not)."""
    m = await _member(session, distributor_id=distributor_id)
    cat, tiers = await repo.catalogue_at(session)
    granting = [r for r in RANK_ORDER if r in tiers and code in {c for c, _, _ in _benefits_of(tiers[r])}]
    known = {c for t in tiers.values() for c, _, _ in _benefits_of(t)} | set(AMOUNT_BENEFITS)
    if code not in known:
        raise BenefitNotFound(
            f"no benefit {code!r} in catalogue version {cat.version}", extra={"benefits": sorted(known)}
        )
    holds = [_hold_ref(h) for h in m.holds]
    suspending = [h for h in holds if h.suspends_benefits]
    others = [h for h in holds if not h.suspends_benefits]
    granted = m.rank in granting
    reasons: list[str] = []
    missing = None
    lowest = granting[0] if granting else None
    if granted:
        reasons.append(
            f"your rank {m.rank} (since {m.rank_since.isoformat()}) grants {code} in benefit catalogue "
            f"version {cat.version} (effective {cat.effective_from.isoformat()})"
        )
    elif lowest is None:
        reasons.append(f"no rank grants {code} in benefit catalogue version {cat.version}")
    else:
        ladder = await ranks.ladder_at(session)
        personal, team = await ranks.sales_totals(
            session, distributor_id=distributor_id, days=ladder.period_days
        )
        step = ladder.steps[RANK_ORDER.index(lowest)]
        missing = {
            "rank": lowest,
            "period_days": ladder.period_days,
            "ladder_version": ladder.version,
            "personal_sales": format_amount(personal),
            "min_personal": format_amount(step.min_personal),
            "personal_needed": format_amount(max(0, step.min_personal - personal)),
            "team_sales": format_amount(team),
            "min_team": format_amount(step.min_team),
            "team_needed": format_amount(max(0, step.min_team - team)),
        }
        reasons.append(
            f"{code} starts at rank {lowest} in benefit catalogue version {cat.version}; your rank is "
            f"{m.rank} (since {m.rank_since.isoformat()})"
        )
        reasons.append(
            f"{lowest} needs {missing['min_personal']} own and {missing['min_team']} team sales in "
            f"{ladder.period_days} days; you have {missing['personal_sales']} and {missing['team_sales']} "
            f"(missing {missing['personal_needed']} own, {missing['team_needed']} team)"
        )
    for h in suspending:
        reasons.append(
            f"suspended while hold {h.id} ({h.reason}, since {h.since}) is active: a violation hold "
            "suspends benefits and points earning"
        )
    for h in others:
        reasons.append(f"hold {h.id} ({h.reason}) does not suspend benefits: maintenance only pauses selling")
    if m.status != "active":
        reasons.append(f"the account is {m.status}")
    return schemas.Explanation(
        code=code,
        in_effect=granted and not suspending and m.status == "active",
        rank=m.rank,
        rank_since=m.rank_since,
        catalogue_version=cat.version,
        granted_from_rank=lowest,
        missing=missing,
        suspended_by=suspending,
        not_suspending=others,
        reasons=reasons,
    )


async def quote(
    session: AsyncSession, *, distributor_id: int, category: str | None, amount: str
) -> schemas.Quote:
    """The member price of ``amount`` in ``category`` for a shop front-end."""
    minor = parse_amount(amount, field="amount")
    m = await _member(session, distributor_id=distributor_id)
    cat, tiers = await repo.catalogue_at(session)
    suspended = any(h["reason"] in VIOLATION_REASONS for h in m.holds) or m.status != "active"
    tier = tiers.get(m.rank)
    bps = 0 if suspended or tier is None else tier.discount_for(category)
    discount, price = member_price(minor, bps)
    note = (
        f"{m.rank} pays {10_000 - bps} / 10000 of the price (catalogue version {cat.version})"
        if not suspended
        else "benefits are suspended by a violation hold: list price"
    )
    return schemas.Quote(
        category=category,
        amount=format_amount(minor),
        discount_bps=bps,
        discount=format_amount(discount),
        member_price=format_amount(price),
        rank=m.rank,
        catalogue_version=cat.version,
        in_effect=not suspended,
        note=note,
    )
