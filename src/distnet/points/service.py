"""Points: earned on own orders at the rank's rate, referral points for a recruit's first
qualifying order, the monthly grant, redemption, expiry (first in, first out, with a notice
before), admin adjustments and refund reversals. Every movement is a balanced ``PTS`` ledger
transaction and names the lots it touched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits import repository as benefits_repo
from distnet.benefits.rules import referral_reversal_due, reversal_due, reversal_split
from distnet.kit import audit, pg
from distnet.kit.errors import IdempotencyConflict, ValidationFailed
from distnet.kit.idempotency import request_hash
from distnet.kit.keys import Principal
from distnet.kit.money import format_amount
from distnet.ledger.postings import check_posted
from distnet.ledger.service import Posting, post
from distnet.network.errors import DistributorNotFound
from distnet.notifications.repository import fan_out_rows
from distnet.points import repository as repo
from distnet.points import schemas
from distnet.points.errors import IdempotencyKeyRequired, PointsInsufficient
from distnet.settings import Settings

PTS = "PTS"


def _check(found: Any, what: str) -> None:
    check_posted(what, found.lines, found.posted)


# --------------------------------------------------------------------------- earning


async def earn_for_orders(
    session: AsyncSession,
    *,
    settings: Settings,
    orders: str,
    params: dict[str, Any],
    ref_type: str,
    ref_id: object,
) -> list[dict[str, Any]]:
    """Points of new orders (``orders``: a query of their ids): one statement writes the lots and
    their ledger transaction. Returns the lots written (member, source, points)."""
    statement = repo.earn_statement(orders)
    values = {
        **params,
        "currency": settings.business.default_currency,
        "txn_kind": "points.earned",
        "ref_type": f"{ref_type}_points",
        "ref_id": str(ref_id),
        "expiry_months": settings.ranks.points_expiry_months,
    }
    # on the session's psycopg connection (kit.pg): the ORM's execute was most of this step's Python
    rows = await pg.fetch(session, statement, values)
    if not rows[0].has_catalogue:  # an emptied database: the default catalogue first, then again
        await benefits_repo.ensure_default(session)
        rows = await pg.fetch(session, statement, values)
    _check(rows[0], "points earning")
    return [
        {
            "lot_id": r.lot_id,
            "distributor_id": r.distributor_id,
            "source": r.source,
            "order_id": r.lot_order_id,
            "points": int(r.lot_points),
        }
        for r in rows
        if r.lot_id is not None
    ]


def earned_in_statement(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The lots a statement with ``repository.earn_ctes`` wrote, from its
    ``repository.EARNED_COLUMNS`` (as :func:`earn_for_orders` returns them); refuses the unit of
    work when a posting found no account."""
    check_posted("points earning", found["points_lines"], found["points_posted"])
    return [
        {
            "lot_id": lot["lot_id"],
            "distributor_id": lot["distributor_id"],
            "source": lot["source"],
            "order_id": lot["order_id"],
            "points": int(lot["points"]),
        }
        for lot in found["points_lots"] or []
    ]


def business_month(at: datetime, time_zone: str) -> str:
    local = at.astimezone(ZoneInfo(time_zone))
    return f"{local.year}-{local.month:02d}"


async def grant_monthly(
    session: AsyncSession, *, settings: Settings, period: str | None = None
) -> dict[str, Any]:
    """The monthly grant (scheduler job ``points_monthly_grant``; runs daily, pays once per member
    and month: the unique lot per (member, 'monthly', YYYY-MM))."""
    period = period or business_month(datetime.now(UTC), settings.business.time_zone)
    await benefits_repo.ensure_default(session)
    await session.execute(repo.OPEN_MEMBER_ACCOUNTS)
    found = (
        await session.execute(
            repo.GRANT_MONTHLY,
            {
                "period": period,
                "expiry_months": settings.ranks.points_expiry_months,
                "txn_kind": "points.monthly_grant",
                "ref_type": "points_grant",
                "ref_id": period,
            },
        )
    ).one()
    _check(found, "monthly grant")
    return {
        "period": period,
        "members": int(found.lots),
        "points": int(found.points),
        "transaction_id": found.transaction_id,
    }


async def expire_due(session: AsyncSession, *, settings: Settings | None = None) -> dict[str, Any]:
    """Expire what is left of every lot past its ``expires_at`` (job ``points_expiry``): the lots
    expire in the order they were earned because spending takes the oldest first."""
    await benefits_repo.ensure_default(session)
    await session.execute(repo.LOCK_EXPIRING)
    found = (await session.execute(repo.EXPIRE, {"ref_id": datetime.now(UTC).date().isoformat()})).one()
    _check(found, "points expiry")
    return {"lots": int(found.lots), "members": int(found.members), "points": int(found.points)}


async def notify_expiring(session: AsyncSession, *, settings: Settings) -> int:
    """Tell members whose points expire within the notice period (job ``points_expiry_notices``):
    once per member and expiry day."""
    return await fan_out_rows(
        session,
        rows=repo.EXPIRY_NOTICES,
        params={"days": settings.ranks.points_expiry_notice_days},
        kind="points_expiring",
    )


# --------------------------------------------------------------------------- spending


async def _lock_member(session: AsyncSession, *, distributor_id: int) -> dict[str, int]:
    await benefits_repo.ensure_default(session)  # the platform's points accounts (one read when present)
    rows = (await session.execute(repo.LOCK_MEMBER, {"d": distributor_id})).all()
    if len(rows) < 2:
        exists = await session.scalar(repo.DISTRIBUTOR_EXISTS, {"d": distributor_id})
        if not exists:
            raise DistributorNotFound(f"no distributor {distributor_id}")
        await session.execute(
            repo.OPEN_POINTS_ACCOUNTS,
            {"d": distributor_id},
        )
        rows = (await session.execute(repo.LOCK_MEMBER, {"d": distributor_id})).all()
    return {r.kind: int(r.balance) for r in rows}


async def _point_value(session: AsyncSession) -> int:
    cat, _ = await benefits_repo.catalogue_at(session)
    return int(cat.point_value_minor)


async def _lots_balance(session: AsyncSession, *, distributor_id: int) -> int:
    """The member's points as its lots hold them: equal to the ``points`` balance once committed,
    and already right inside a transaction whose credits wait for commit (migration 0110)."""
    return int(
        await session.scalar(
            repo.LOTS_BALANCE,
            {"d": distributor_id},
        )
        or 0
    )


async def _spend_view(session: AsyncSession, *, spend_id: int) -> schemas.Spend:
    s = (
        await session.execute(
            repo.SPEND,
            {"i": spend_id},
        )
    ).one()
    lots = [
        schemas.LotUse(lot_id=r.lot_id, points=int(r.points))
        for r in await session.execute(
            repo.SPEND_LOTS,
            {"i": spend_id},
        )
    ]
    balance = await _lots_balance(session, distributor_id=s.distributor_id)
    return schemas.Spend(
        id=s.id,
        distributor_id=s.distributor_id,
        kind=s.kind,
        points=int(s.points),
        purpose=s.purpose,
        reference=s.reference,
        value=format_amount(int(s.points) * await _point_value(session)),
        lots=lots,
        balance_after=balance,
        created_at=s.created_at,
    )


async def _spend(
    session: AsyncSession,
    *,
    distributor_id: int,
    kind: str,
    key: str,
    body_hash: bytes,
    points: int,
    purpose: str,
    reference: str | None,
    actor: str,
    platform: str,
) -> tuple[int, int]:
    """Take ``points`` from the member's oldest lots. Returns (status, spend id): 200 for a replay
    of the same key and body. Race-safe: the member's points account is locked first, so racing
    spends of one member run one after the other and the second sees the first's balance."""
    balances = await _lock_member(session, distributor_id=distributor_id)
    prior = (
        await session.execute(
            repo.PRIOR_SPEND,
            {"d": distributor_id, "k": kind, "key": key},
        )
    ).first()
    if prior is not None:
        if bytes(prior.request_hash) != body_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was used with a different request body", extra={"spend_id": prior.id}
            )
        return 200, prior.id
    balance = balances.get("points", 0)
    if points > balance:
        raise PointsInsufficient(
            f"{points} points asked, {balance} available", extra={"balance": balance, "points": points}
        )
    spend_id = int(
        await session.scalar(
            repo.INSERT_SPEND,
            {
                "d": distributor_id,
                "k": kind,
                "key": key,
                "h": body_hash,
                "p": points,
                "purpose": purpose,
                "ref": reference,
                "by": actor,
            },
        )
    )
    used = (
        await session.execute(repo.CONSUME_FIFO, {"d": distributor_id, "points": points, "spend": spend_id})
    ).all()
    if sum(int(u.points) for u in used) != points:  # lots disagree with the balance: ledger verify names it
        raise RuntimeError(f"lots of distributor {distributor_id} hold less than its points balance")
    txn = await post(
        session,
        kind=f"points.{kind}",
        currency=PTS,
        ref_type="points_spend",
        ref_id=spend_id,
        postings=[Posting("points", -points, distributor_id), Posting(platform, points)],
    )
    await session.execute(repo.SET_SPEND_TRANSACTION, {"t": txn, "i": spend_id})
    return 201, spend_id


async def redeem(
    session: AsyncSession,
    *,
    principal: Principal,
    distributor_id: int,
    data: schemas.RedemptionCreate,
    key: str | None,
) -> tuple[int, schemas.Spend]:
    """``POST /me/points/redemptions``: idempotent by ``Idempotency-Key``; refused (409) beyond
    the balance. A points debt is not spendable (it is paid by later earnings)."""
    if not key or len(key) > 200:
        raise IdempotencyKeyRequired(
            "an Idempotency-Key header (1 to 200 characters) is required", field="Idempotency-Key"
        )
    status, spend_id = await _spend(
        session,
        distributor_id=distributor_id,
        kind="redemption",
        key=key,
        body_hash=request_hash(msgspec.to_builtins(data)),
        points=data.points,
        purpose=data.purpose,
        reference=data.reference,
        actor=principal.actor,
        platform="points_redeemed",
    )
    return status, await _spend_view(session, spend_id=spend_id)


async def adjust(
    session: AsyncSession,
    *,
    principal: Principal,
    distributor_id: int,
    data: schemas.AdjustmentCreate,
    settings: Settings,
    key: str | None,
) -> tuple[int, schemas.Adjusted]:
    """An admin's correction with a reason, audited: positive points are a new lot, negative ones
    are taken from the oldest lots (never beyond the balance)."""
    if data.points == 0:
        raise ValidationFailed("points must not be 0", field="points")
    key = key or uuid.uuid4().hex
    body_hash = request_hash(msgspec.to_builtins(data))
    lot_id = spend_id = None
    status = 201
    if data.points > 0:
        await _lock_member(session, distributor_id=distributor_id)
        lot = (
            await session.execute(
                repo.INSERT_ADJUSTMENT_LOT,
                {
                    "d": distributor_id,
                    "ref": key[:64],
                    "p": data.points,
                    "months": settings.ranks.points_expiry_months,
                },
            )
        ).first()
        if lot is None:
            status, lot_id = (
                200,
                await session.scalar(
                    repo.ADJUSTMENT_LOT,
                    {"d": distributor_id, "ref": key[:64]},
                ),
            )
        else:
            lot_id = lot.id
            await post(
                session,
                kind="points.adjusted",
                currency=PTS,
                ref_type="points_lot",
                ref_id=lot_id,
                memo=data.reason,
                postings=[
                    Posting("points", data.points, distributor_id),
                    Posting("points_issued", -data.points),
                ],
            )
    else:
        status, spend_id = await _spend(
            session,
            distributor_id=distributor_id,
            kind="adjustment",
            key=key,
            body_hash=body_hash,
            points=-data.points,
            purpose="adjustment",
            reference=data.reason[:200],
            actor=principal.actor,
            platform="points_issued",
        )
    if status == 201:
        await audit.record(
            session,
            principal,
            "points.adjusted",
            "distributor",
            distributor_id,
            after={"points": data.points, "reason": data.reason, "lot_id": lot_id, "spend_id": spend_id},
        )
    balance = await _lots_balance(session, distributor_id=distributor_id)
    return status, schemas.Adjusted(
        distributor_id=distributor_id,
        points=data.points,
        reason=data.reason,
        lot_id=lot_id,
        spend_id=spend_id,
        balance_after=balance,
    )


# --------------------------------------------------------------------------- refunds


async def reverse_for_refund(
    session: AsyncSession,
    *,
    order_id: int,
    seller_id: int,
    order_amount: int,
    refunded_total: int,
    refund_id: int,
) -> dict[str, Any] | None:
    """Take back the points the order earned, as one ``points.reversed`` transaction:
    - the seller's, in proportion to what is refunded so far (a full refund takes all of them);
    - the sponsor's referral, if the order made one, in full once the order's paid amount falls
      below the minimum that qualified it (a refund that leaves it qualifying takes nothing).
    Each comes from what is left of its lot; the spent rest becomes a points debt
    (``points_owed``) that later earnings pay first. A referral taken back is not paid again for
    a later order of the same recruit (one referral lot per recruit). The members' points
    accounts are locked by the caller's account lock (orders.refunds.reverse_commissions), in
    the one lock order; again here, in account order, for an order without commissions."""
    sponsor = await session.scalar(repo.REFERRAL_OWNER, {"o": order_id})
    members = sorted({seller_id} | ({int(sponsor)} if sponsor is not None else set()))
    if len((await session.execute(repo.LOCK_MEMBERS, {"ds": members})).all()) < 2 * len(members):
        for d in members:  # accounts missing (made outside registration): open them, then lock
            await _lock_member(session, distributor_id=d)
    postings: list[Posting] = []
    reversed_lots: dict[str, Any] = {}
    lot = (await session.execute(repo.LOCK_ORDER_LOT, {"d": seller_id, "ref": str(order_id)})).first()
    if lot is not None:
        due = reversal_due(int(lot.amount), refunded_total, order_amount, int(lot.reversed))
        if due:
            postings += await _take_back(session, lot.id, seller_id, due, int(lot.remaining))
            reversed_lots.update(lot_id=lot.id, reversed=due)
    referral = (await session.execute(repo.LOCK_REFERRAL_LOT, {"o": order_id})).first()
    if referral is not None:
        due = referral_reversal_due(
            int(referral.amount),
            int(referral.reversed),
            order_amount - refunded_total,
            int(referral.referral_min_order),
        )
        if due:
            sponsor_id = int(referral.distributor_id)
            postings += await _take_back(session, referral.id, sponsor_id, due, int(referral.remaining))
            reversed_lots["referral"] = {"lot_id": referral.id, "sponsor_id": sponsor_id, "reversed": due}
    if not postings:
        return None
    await post(
        session,
        kind="points.reversed",
        currency=PTS,
        ref_type="refund",
        ref_id=refund_id,
        memo=f"refund of order {order_id}",
        postings=postings,
    )
    return reversed_lots


async def _take_back(
    session: AsyncSession, lot_id: int, member: int, due: int, remaining: int
) -> list[Posting]:
    """Take ``due`` points of a lot back from ``member``: from what the lot still holds, the rest
    as a points debt; returns the postings (the platform's issued points by the whole)."""
    taken, debt = reversal_split(due, remaining)
    await session.execute(repo.REVERSE_LOT, {"t": taken, "r": due, "i": lot_id})
    return [
        Posting("points", -taken, member),
        Posting("points_owed", -debt, member),
        Posting("points_issued", due),
    ]


# --------------------------------------------------------------------------- views


async def my_points(session: AsyncSession, *, distributor_id: int) -> schemas.MyPoints:
    rows: dict[str, int] = dict(
        (
            await session.execute(
                repo.POINTS_BALANCES,
                {"d": distributor_id},
            )
        ).all()
    )
    lots = [
        schemas.Lot(
            id=r.id,
            source=r.source,
            source_ref=r.source_ref,
            amount=int(r.amount),
            remaining=int(r.remaining),
            netted=int(r.netted),
            reversed=int(r.reversed),
            expired=int(r.expired),
            earned_at=r.earned_at,
            expires_at=r.expires_at,
        )
        for r in await session.execute(
            repo.OPEN_LOTS,
            {"d": distributor_id},
        )
    ]
    balance = int(rows.get("points", 0))
    return schemas.MyPoints(
        distributor_id=distributor_id,
        balance=balance,
        debt=-int(rows.get("points_owed", 0)),
        value=format_amount(balance * await _point_value(session)),
        lots=lots,
    )
