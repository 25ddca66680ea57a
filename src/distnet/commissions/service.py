"""Commission plans (versioned, effective-dated), commission lists and explanations.

Attribution itself is one set-based statement (commissions.repository.attribute) called by the
orders service for single orders, batches and imports alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions import repository as repo
from distnet.commissions.errors import CommissionNotFound, PlanInvalid
from distnet.commissions.schemas import (
    Availability,
    CommissionExplanation,
    CommissionView,
    ExclusionCheck,
    PlanCreate,
    PlanList,
    PlanQualification,
    PlanRate,
    PlanRef,
    PlanView,
    PostingLine,
    RefundRule,
    WithheldBy,
)
from distnet.kit import audit
from distnet.kit.auth import Principal, ensure_self_or_staff
from distnet.kit.contract import Page
from distnet.kit.errors import ValidationFailed
from distnet.kit.money import format_amount, parse_amount
from distnet.kit.pagination import check_limit, decode_cursor, encode_cursor
from distnet.models import Commission, CommissionPlan, CommissionQualification, CommissionRate, Hold, Order
from distnet.models.money import COMMISSION_STATUSES
from distnet.models.network import RANKS
from distnet.orders.schemas import Attribution, LevelAttribution, SkippedQualification
from distnet.settings import Settings

BACKDATE_TOLERANCE = timedelta(minutes=5)


# --------------------------------------------------------------------------- plans


async def create_plan(
    session: AsyncSession, *, settings: Settings, principal: Principal, data: PlanCreate
) -> PlanView:
    cap = settings.business.max_levels_cap
    errors: list[dict[str, str]] = []
    if data.max_levels > cap:
        errors.append({"field": "max_levels", "message": f"the platform cap is {cap} levels"})
    try:
        min_amount = parse_amount(data.min_order_amount, field="min_order_amount", allow_zero=True)
    except ValidationFailed as exc:
        errors.extend(exc.extra["errors"])
        min_amount = 0
    seen: set[tuple[int, str]] = set()
    for i, r in enumerate(data.rates):
        if r.rank not in RANKS:
            errors.append({"field": f"rates[{i}].rank", "message": f"rank must be one of {', '.join(RANKS)}"})
        if r.level > data.max_levels:
            errors.append(
                {"field": f"rates[{i}].level", "message": f"level above max_levels {data.max_levels}"}
            )
        if (r.level, r.rank) in seen:
            errors.append({"field": f"rates[{i}]", "message": "duplicate (level, rank)"})
        seen.add((r.level, r.rank))
    quals: list[tuple[int, int, int, str | None]] = []
    for i, q in enumerate(data.qualifications):
        if q.level > data.max_levels or q.level in {x[0] for x in quals}:
            errors.append(
                {"field": f"qualifications[{i}].level", "message": "one qualification per paid level"}
            )
        if q.min_rank is not None and q.min_rank not in RANKS:
            errors.append(
                {
                    "field": f"qualifications[{i}].min_rank",
                    "message": f"rank must be one of {', '.join(RANKS)}",
                }
            )
        try:
            own = parse_amount(q.min_own_sales, field=f"qualifications[{i}].min_own_sales", allow_zero=True)
        except ValidationFailed as exc:
            errors.extend(exc.extra["errors"])
            own = 0
        quals.append((q.level, own, q.period_days, q.min_rank))
    missing = [(lv, rk) for lv in range(1, data.max_levels + 1) for rk in RANKS if (lv, rk) not in seen]
    if missing and not errors:
        errors.append(
            {
                "field": "rates",
                "message": "a rate is needed for every (level, rank); missing: "
                + ", ".join(f"{lv}/{rk}" for lv, rk in missing),
            }
        )
    now = datetime.now(UTC)
    effective_from = data.effective_from.astimezone(UTC) if data.effective_from else now
    if effective_from < now - BACKDATE_TOLERANCE:
        # orders already attributed under the previous version would disagree with the new one
        errors.append({"field": "effective_from", "message": "a plan cannot take effect in the past"})
    if errors:
        raise PlanInvalid(errors[0]["message"], errors=errors)
    # the default plan keeps covering the time before this one
    await repo.ensure_default_plan(session)
    version = await session.scalar(text("SELECT coalesce(max(version), 0) + 1 FROM commission_plan"))
    plan = CommissionPlan(
        version=version,
        name=data.name.strip(),
        max_levels=data.max_levels,
        hold_days=data.hold_days,
        min_order_amount=min_amount,
        excluded_categories=sorted(set(data.excluded_categories)),
        effective_from=effective_from,
        created_by=principal.actor,
    )
    session.add(plan)
    await session.flush()
    session.add_all(
        [CommissionRate(plan_id=plan.id, level=r.level, rank=r.rank, rate_bps=r.rate_bps) for r in data.rates]
    )
    session.add_all(
        [
            CommissionQualification(
                plan_id=plan.id, level=lv, min_own_sales=own, period_days=days, min_rank=rank
            )
            for lv, own, days, rank in quals
        ]
    )
    await session.flush()
    view = await _plan_view(session, plan=plan, active_id=None)
    await audit.record(
        session,
        principal,
        "commission_plan.created",
        "commission_plan",
        plan.version,
        after={k: v for k, v in msgspec.to_builtins(view).items() if k != "effective_from"}
        | {"effective_from": effective_from.isoformat()},
    )
    return view


async def _plan_view(session: AsyncSession, *, plan: CommissionPlan, active_id: int | None) -> PlanView:
    rates = await repo.plan_rates(session, plan.id)
    return PlanView(
        id=plan.id,
        version=plan.version,
        name=plan.name,
        max_levels=plan.max_levels,
        hold_days=plan.hold_days,
        min_order_amount=format_amount(plan.min_order_amount),
        excluded_categories=list(plan.excluded_categories),
        effective_from=plan.effective_from,
        created_by=plan.created_by,
        active=plan.id == active_id,
        rates=[PlanRate(level=r["level"], rank=r["rank"], rate_bps=r["rate_bps"]) for r in rates],
        qualifications=[
            PlanQualification(
                level=q.level,
                min_own_sales=format_amount(q.min_own_sales),
                period_days=q.period_days,
                min_rank=q.min_rank,
            )
            for q in await session.scalars(
                select(CommissionQualification)
                .where(CommissionQualification.plan_id == plan.id)
                .order_by(CommissionQualification.level)
            )
        ],
    )


async def list_plans(session: AsyncSession) -> PlanList:
    now = await session.scalar(text("SELECT now()"))
    active = await repo.plan_at(session, now)
    plans = (await session.scalars(select(CommissionPlan).order_by(CommissionPlan.version.desc()))).all()
    items = [await _plan_view(session, plan=p, active_id=active["id"] if active else None) for p in plans]
    return PlanList(items=items, active_version=active["version"] if active else None)


# --------------------------------------------------------------------------- commissions


def _commission_item(c: Commission) -> CommissionView:
    return CommissionView(
        id=c.id,
        order_id=c.order_id,
        level=c.level,
        beneficiary_id=c.beneficiary_id,
        rank_used=c.rank_used,
        rate_bps=c.rate_bps,
        base=format_amount(c.base),
        amount=format_amount(c.amount),
        reversed=format_amount(c.reversed),
        net_amount=format_amount(c.amount - c.reversed),
        status=c.status,
        hold_until=c.hold_until,
        withheld_hold_id=c.withheld_hold_id,
        available_at=c.available_at,
        paid_at=c.paid_at,
        created_at=c.created_at,
    )


async def list_commissions(
    session: AsyncSession,
    *,
    principal: Principal,
    beneficiary_id: int | None,
    status: str | None,
    limit: int | None,
    cursor: str | None,
) -> Page[CommissionView]:
    limit = check_limit(limit)
    if status is not None and status not in COMMISSION_STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(COMMISSION_STATUSES)}", field="status")
    if not principal.is_staff:
        beneficiary_id = beneficiary_id or principal.distributor_id
    if beneficiary_id is not None:
        ensure_self_or_staff(principal, beneficiary_id)
    after = decode_cursor(cursor, 1)
    if after is not None and not isinstance(after[0], int):
        raise ValidationFailed("cursor is not valid", field="cursor")
    stmt = select(Commission).order_by(Commission.id.desc()).limit(limit + 1)
    if beneficiary_id is not None:
        stmt = stmt.where(Commission.beneficiary_id == beneficiary_id)
    if status is not None:
        stmt = stmt.where(Commission.status == status)
    if after is not None:
        stmt = stmt.where(Commission.id < after[0])
    rows = list(await session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([_commission_item(c) for c in rows], encode_cursor(rows[-1].id) if more else None)


async def _visible_commission(
    session: AsyncSession, *, principal: Principal, commission_id: int
) -> Commission:
    c = await session.get(Commission, commission_id)
    if c is None:
        raise CommissionNotFound(f"no commission {commission_id}")
    try:
        ensure_self_or_staff(principal, c.beneficiary_id)
    except Exception as exc:
        raise CommissionNotFound(f"no commission {commission_id}") from exc
    return c


async def get_commission(
    session: AsyncSession, *, principal: Principal, commission_id: int
) -> CommissionView:
    return _commission_item(
        await _visible_commission(session, principal=principal, commission_id=commission_id)
    )


LEVEL_WORDS = {
    1: "the seller (level 1)",
    2: "the seller's sponsor (level 2)",
    3: "the sponsor's sponsor (level 3)",
}


async def explain(
    session: AsyncSession, *, settings: Settings, principal: Principal, commission_id: int
) -> CommissionExplanation:
    """Everything that decided this commission, in the distributor's words."""
    c = await _visible_commission(session, principal=principal, commission_id=commission_id)
    order = await session.get(Order, c.order_id)
    plan = await session.get(CommissionPlan, c.plan_id)
    assert order is not None and plan is not None
    cap = settings.business.max_levels_cap
    formula = f"floor({format_amount(c.base)} x {c.rate_bps} / 10000) = {format_amount(c.amount)}"
    rank_now = await session.scalar(
        text("SELECT rank FROM distributor WHERE id = :d"), {"d": c.beneficiary_id}
    )
    rank_reason = (
        f"your rank when the order was attributed was {c.rank_used}; the rate for level {c.level} "
        f"and rank {c.rank_used} in plan version {plan.version} is {c.rate_bps} bps"
    )
    if rank_now != c.rank_used:
        rank_reason += (
            f" (your rank is {rank_now} now; rank changes apply to orders attributed after them, "
            "never retroactively)"
        )
    exclusions = [
        ExclusionCheck(
            check="category",
            value=order.category,
            excluded_categories=list(plan.excluded_categories),
            passed=order.category is None or order.category not in plan.excluded_categories,
        ),
        ExclusionCheck(
            check="min_order_amount",
            value=format_amount(order.amount),
            minimum=format_amount(plan.min_order_amount),
            passed=order.amount >= plan.min_order_amount,
        ),
        ExclusionCheck(
            check="max_levels",
            value=c.level,
            plan_max_levels=plan.max_levels,
            platform_cap=cap,
            passed=c.level <= min(plan.max_levels, cap),
        ),
        ExclusionCheck(
            check="beneficiary_active",
            passed=True,
            detail="closed accounts earn no commission; the beneficiary was not closed at attribution",
        ),
    ]
    qual = await session.get(CommissionQualification, (plan.id, c.level))
    if qual is not None:
        own = int(
            await session.scalar(
                text("SELECT distnet_own_sales(:b, :at, :days)"),
                {"b": c.beneficiary_id, "at": order.placed_at, "days": qual.period_days},
            )
            or 0
        )
        exclusions.append(
            ExclusionCheck(
                check="qualification",
                min_own_sales=format_amount(qual.min_own_sales),
                period_days=qual.period_days,
                own_sales=format_amount(own),
                min_rank=qual.min_rank,
                rank_used=c.rank_used,
                passed=True,
                detail=f"level {c.level} needs {format_amount(qual.min_own_sales)} own sales in {qual.period_days} days "
                f"up to the order's placed_at"
                + (f" and rank {qual.min_rank}" if qual.min_rank else "")
                + f"; the beneficiary had {format_amount(own)} (sales recorded later count too)",
            )
        )
    withheld = None
    if c.withheld_hold_id is not None:
        hold = await session.get(Hold, c.withheld_hold_id)
        if hold is not None:
            withheld = WithheldBy(
                hold_id=hold.id,
                reason=hold.reason,
                since=hold.started_at,
                hold_active=hold.lifted_at is None,
                appealable=hold.appealable,
                explanation=(
                    f"withheld because your card has a violation hold ({hold.reason}, hold {hold.id}); "
                    + (
                        "an appeal that clears the hold releases it; a confirmed hold forfeits it"
                        if c.status == "withheld"
                        else f"the commission is now {c.status}"
                    )
                ),
            )
    postings = [
        PostingLine(
            transaction_id=r.transaction_id,
            transaction_kind=r.transaction_kind,
            account=r.account,
            amount=format_amount(r.amount),
            created_at=r.created_at,
        )
        for r in await session.execute(
            text(
                """
                SELECT t.id AS transaction_id, t.kind AS transaction_kind, a.kind AS account, p.amount,
                       p.created_at
                  FROM ledger_posting p JOIN ledger_transaction t ON t.id = p.transaction_id
                  JOIN ledger_account a ON a.id = p.account_id
                 WHERE p.commission_id = :c AND a.distributor_id IS NOT NULL ORDER BY p.id
                """
            ),
            {"c": c.id},
        )
    ]
    return CommissionExplanation(
        commission_id=c.id,
        order_id=c.order_id,
        beneficiary_id=c.beneficiary_id,
        level=c.level,
        status=c.status,
        plan=PlanRef(id=plan.id, version=plan.version, name=plan.name, effective_from=plan.effective_from),
        rule_path=[
            f"order {order.id} placed at {order.placed_at.isoformat()} falls under plan version {plan.version} "
            f"(the latest plan effective on or before that time)",
            f"level {c.level}: you are {LEVEL_WORDS.get(c.level, f'level {c.level}')} of order {order.id}",
            f"rate row (level {c.level}, rank {c.rank_used}) = {c.rate_bps} bps",
            f"amount = {formula}",
        ],
        rank_used=c.rank_used,
        rank_reason=rank_reason,
        rank_now=rank_now,
        rate_bps=c.rate_bps,
        base=format_amount(c.base),
        amount=format_amount(c.amount),
        formula=formula,
        exclusions_checked=exclusions,
        reversed=format_amount(c.reversed),
        net_amount=format_amount(c.amount - c.reversed),
        refunds=RefundRule(
            order_amount=format_amount(order.amount),
            refunded=format_amount(order.refunded_amount),
            rule="reversed = floor(amount x refunded / order amount): a full refund reverses all of it",
        ),
        hold_until=c.hold_until,
        available=_availability(c, withheld is not None),
        withheld=withheld,
        postings=postings,
    )


def _availability(c: Commission, withheld: bool) -> Availability:
    if c.status == "pending":
        text_ = (
            f"pending during the {c.hold_until.isoformat()} return window; it becomes available at the "
            "first settlement after that, unless your card has a violation hold then"
        )
    elif c.status == "available":
        text_ = "available since " + (c.available_at.isoformat() if c.available_at else "settlement")
    elif c.status == "reserved":
        text_ = "reserved in a payout run waiting for the bank's result"
    elif c.status == "paid":
        text_ = "paid out" + (f" at {c.paid_at.isoformat()}" if c.paid_at else "")
    elif c.status == "withheld":
        text_ = "withheld until the violation hold is decided; released money returns to pending"
    elif c.status == "forfeited":
        text_ = "forfeited: the violation hold was confirmed"
    else:
        text_ = "fully reversed by refunds; nothing is left to pay"
    return Availability(
        status=c.status,
        hold_until=c.hold_until,
        available_at=c.available_at,
        explanation=text_,
        withheld=withheld,
    )


async def skipped_levels(session: AsyncSession, *, order_id: int, cap: int) -> Attribution:
    """Per level of an order: its commission, or why there is none (no row is written for a
    skipped level; this explanation is computed from the plan and the upline)."""
    order = await session.get(Order, order_id)
    assert order is not None
    plan = await repo.plan_at(session, order.placed_at)
    cap = min(cap, 3)  # distributor_upline holds the nearest three ancestors (the legal ceiling)
    have = {
        r.level: r
        for r in await session.execute(
            text("SELECT level, id, beneficiary_id FROM commission WHERE order_id = :o"), {"o": order_id}
        )
    }
    upline = {
        r.level + 1: (r.ancestor_id, r.status)
        for r in await session.execute(
            text(
                """
            SELECT u.level, u.ancestor_id, d.status FROM distributor_upline u JOIN distributor d ON d.id = u.ancestor_id
             WHERE u.distributor_id = :s
            """
            ),
            {"s": order.seller_id},
        )
    }
    seller_status = await session.scalar(
        text("SELECT status FROM distributor WHERE id = :s"), {"s": order.seller_id}
    )
    upline[1] = (order.seller_id, seller_status)
    skips = {
        r.level: r
        for r in await session.execute(
            text(
                "SELECT level, beneficiary_id, rank, own_sales, min_own_sales, period_days, min_rank "
                "FROM commission_skip WHERE order_id = :o"
            ),
            {"o": order_id},
        )
    }
    levels = []
    for level in range(1, cap + 1):
        entry: dict[str, Any] = {"level": level, "beneficiary_id": upline.get(level, (None,))[0]}
        if level in skips:
            sk = skips[level]
            entry.update(
                commission_id=None,
                beneficiary_id=sk.beneficiary_id,
                note=qualification_note(sk),
                qualification=SkippedQualification(
                    own_sales=format_amount(sk.own_sales),
                    min_own_sales=format_amount(sk.min_own_sales),
                    period_days=sk.period_days,
                    min_rank=sk.min_rank,
                    rank=sk.rank,
                ),
            )
        elif level in have:
            entry.update(
                commission_id=have[level].id,
                beneficiary_id=have[level].beneficiary_id,
                note="commission attributed",
            )
        elif plan is None:
            entry.update(
                commission_id=None, note="no commission plan was in effect when the order was placed"
            )
        elif order.category is not None and order.category in plan["excluded_categories"]:
            entry.update(
                commission_id=None,
                note=f"category {order.category!r} is excluded by plan version {plan['version']}",
            )
        elif order.amount < plan["min_order_amount"]:
            entry.update(
                commission_id=None,
                note=f"order amount is below the plan minimum {format_amount(plan['min_order_amount'])}",
            )
        elif level > plan["max_levels"]:
            entry.update(
                commission_id=None, note=f"plan version {plan['version']} pays {plan['max_levels']} levels"
            )
        elif level not in upline:
            entry.update(commission_id=None, note="no distributor at this level of the upline")
        elif upline[level][1] == "closed":
            entry.update(commission_id=None, note="the beneficiary's account is closed")
        else:
            entry.update(commission_id=None, note="no commission was attributed at this level")
        levels.append(LevelAttribution(**entry))
    return Attribution(plan_version=plan["version"] if plan else None, levels=levels)


def qualification_note(sk: Any) -> str:
    """Why an unqualified level earned nothing, in the figures it was judged on."""
    parts = []
    if sk.own_sales < sk.min_own_sales:
        parts.append(
            f"level {sk.level} needs {format_amount(sk.min_own_sales)} own sales in {sk.period_days} days; "
            f"{format_amount(sk.own_sales)}"
        )
    if sk.min_rank is not None and sk.min_rank != sk.rank:
        parts.append(f"level {sk.level} needs rank {sk.min_rank} or above; {sk.rank}")
    return "not qualified: " + "; ".join(parts) if parts else "not qualified"
