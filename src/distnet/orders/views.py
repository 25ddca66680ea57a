"""Orders as their readers see them: one order (GET /orders/{id}, the answers of ingest and
refunds), and a seller's own orders (GET /me/orders, /distributors/{id}/orders)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions.service import skipped_levels
from distnet.kit.auth import Principal
from distnet.kit.crypto import decrypt_many
from distnet.kit.errors import ValidationFailed
from distnet.kit.masking import mask_name
from distnet.kit.money import format_amount
from distnet.kit.pagination import check_limit, decode_cursor, encode_cursor
from distnet.models import Order
from distnet.network.service import visible_distributor
from distnet.orders import repository as repo
from distnet.orders.errors import OrderNotFound
from distnet.orders.schemas import (
    CommissionLine,
    OrderDetail,
    OrderView,
    PersonRef,
    PointsEarned,
    RefundLine,
    SellerOrder,
    SellerOrderCommission,
    SellerOrderPage,
    SellerOrderRefund,
)
from distnet.settings import Settings

MASK = "****"
ZERO = format_amount(0)


def shown_buyer_refs(secret: bytes, stored: list[tuple[bytes | None, bytes | None]]) -> list[str | None]:
    """The buyer reference of each (buyer_ref_enc, buyer_ref_hash) as the owner and reviewers see
    it: decrypted, or for orders stored before it was kept (hash only) masked as ``****`` and the
    first six hex digits of its keyed hash, so that orders of one buyer still read alike."""
    plain = decrypt_many(secret, [enc for enc, _ in stored])
    return [
        value if value is not None else (MASK + bytes(h).hex()[:6] if h is not None else None)
        for value, (_, h) in zip(plain, stored, strict=True)
    ]


def order_status(amount: int, refunded: int) -> str:
    if refunded == 0:
        return "completed"
    return "refunded" if refunded >= amount else "partially_refunded"


def commission_view(c: Any, base: str | None = None) -> CommissionLine:
    """A commission row (attributes named as commissions.repository.COMMISSION_COLUMNS) as shown;
    ``base``: its base already formatted (a new order's amount, the base of each of its lines)."""
    amount = format_amount(c.amount)
    reversed_ = c.reversed
    return CommissionLine(
        id=c.id,
        level=c.level,
        beneficiary_id=c.beneficiary_id,
        rate_bps=c.rate_bps,
        rank_used=c.rank_used,
        plan_version=c.plan_version,
        base=format_amount(c.base) if base is None else base,
        amount=amount,
        reversed=format_amount(reversed_) if reversed_ else ZERO,
        net_amount=format_amount(c.amount - reversed_) if reversed_ else amount,
        status=c.status,
        hold_until=c.hold_until,
        withheld_hold_id=c.withheld_hold_id,
    )


def points_item(lot: Any) -> PointsEarned:
    return PointsEarned(distributor_id=lot["distributor_id"], source=lot["source"], points=lot["points"])


def new_order_view(
    order_id: int,
    created_at: datetime,
    row: dict[str, Any],
    card_number: str,
    commissions: list[Any],
    buyer_ref: str | None,
    *,
    with_refunds: bool = True,
) -> OrderView:
    """The view of an order just written (what order_views would read back)."""
    amount = row["amount"]
    shown = format_amount(amount)  # the order's amount is the base of each of its commissions
    return OrderView(
        id=order_id,
        source=row["source"],
        external_id=row["external_id"],
        status="completed",
        card_number=card_number,
        seller_id=row["seller_id"],
        amount=shown,
        currency=row["currency"],
        category=row["category"],
        channel=row["channel"],
        placed_at=row["placed_at"],
        created_at=created_at,
        refunded_amount=ZERO,
        remaining_amount=shown,
        buyer_ref=buyer_ref if row["buyer_ref_enc"] else None,
        commissions=[commission_view(c, shown) for c in commissions],
        refunds=[] if with_refunds else msgspec.UNSET,
    )


async def order_views(
    session: AsyncSession,
    order_ids: list[int],
    *,
    secret: bytes,
    with_refunds: bool = True,
    explain: bool = False,
) -> list[OrderView]:
    if not order_ids:
        return []
    orders = await repo.orders_by_id(session, order_ids)
    buyer_refs = dict(
        zip(
            orders,
            shown_buyer_refs(secret, [(o["buyer_ref_enc"], o["buyer_ref_hash"]) for o in orders.values()]),
            strict=True,
        )
    )
    commissions = await repo.commissions_of(session, order_ids)
    earned = await repo.points_of(session, order_ids)
    refunds: dict[int, list[RefundLine]] = {}
    if with_refunds and order_ids:
        for r in await repo.refunds_of(session, order_ids):
            refunds.setdefault(r.order_id, []).append(
                RefundLine(
                    id=r.id,
                    external_id=r.external_id,
                    amount=format_amount(r.amount),
                    created_at=r.created_at,
                )
            )
    views = []
    for oid in order_ids:
        o = orders[oid]
        views.append(
            OrderView(
                id=o["id"],
                source=o["source"],
                external_id=o["external_id"],
                status=order_status(o["amount"], o["refunded_amount"]),
                card_number=o["card_number"],
                seller_id=o["seller_id"],
                amount=format_amount(o["amount"]),
                currency=o["currency"],
                category=o["category"],
                channel=o["channel"],
                placed_at=o["placed_at"],
                created_at=o["created_at"],
                refunded_amount=format_amount(o["refunded_amount"]),
                remaining_amount=format_amount(o["amount"] - o["refunded_amount"]),
                buyer_ref=buyer_refs[oid],
                commissions=[commission_view(c) for c in commissions.get(oid, [])],
                refunds=refunds.get(oid, []) if with_refunds else msgspec.UNSET,
                points_earned=[points_item(p) for p in earned.get(oid, [])],
            )
        )
    return views


async def visible_order(
    session: AsyncSession, principal: Principal, order_id: int, *, lock: bool = False
) -> Order:
    order = await repo.order_by_id(session, order_id, lock=lock)
    if order is None or not (principal.is_staff or principal.distributor_id == order.seller_id):
        raise OrderNotFound(f"no order {order_id}")
    return order


async def get_order(
    session: AsyncSession, settings: Settings, principal: Principal, order_id: int
) -> OrderDetail:
    await visible_order(session, principal, order_id)
    view = (await order_views(session, [order_id], secret=settings.secret_key))[0]
    # why each level has (or has no) commission: skipped levels have no row and are explained here
    attribution = await skipped_levels(session, order_id=order_id, cap=settings.business.max_levels_cap)
    return OrderDetail(**msgspec.structs.asdict(view), attribution=attribution)


# -- a seller's own orders (GET /me/orders, /distributors/{id}/orders) ----------------------


def _order_cursor(after: str | None) -> tuple[datetime, int] | None:
    keys = decode_cursor(after, 2)
    if keys is None:
        return None
    try:
        placed_at = datetime.fromisoformat(keys[0])
    except (TypeError, ValueError):
        placed_at = None
    if placed_at is None or placed_at.tzinfo is None or not isinstance(keys[1], int):
        raise ValidationFailed("cursor is not valid", field="cursor")
    return placed_at, keys[1]


async def seller_orders(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    *,
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> SellerOrderPage:
    """The distributor's own sales, newest first: each order with its commissions per level (the
    upline by code and masked name only), its refunds and its status. Owner or staff; another
    distributor gets 404."""
    seller = await visible_distributor(session, principal, distributor_id)
    limit = check_limit(limit)
    if placed_from is not None and placed_to is not None and placed_to <= placed_from:
        raise ValidationFailed("to must be after from", field="to")
    rows = await repo.seller_orders_page(
        session,
        seller.id,
        placed_from=placed_from,
        placed_to=placed_to,
        status=status,
        after=_order_cursor(cursor),
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = await seller_order_views(session, settings, seller.id, rows)
    next_cursor = encode_cursor(rows[-1].placed_at.isoformat(), rows[-1].id) if more else None
    return SellerOrderPage(items=items, next_cursor=next_cursor)


async def seller_order_views(
    session: AsyncSession, settings: Settings, viewer_id: int, rows: list[Any]
) -> list[SellerOrder]:
    """Orders (rows of ``repo.seller_orders_page``) as ``viewer_id`` may see them."""
    ids = [r.id for r in rows]
    lines: dict[int, list[SellerOrderCommission]] = {}
    for c in await repo.commission_lines(session, ids):
        own = c.beneficiary_id == viewer_id
        lines.setdefault(c.order_id, []).append(
            SellerOrderCommission(
                level=c.level,
                beneficiary=PersonRef(code=c.code, name=mask_name(c.name, erased=c.erased_at is not None)),
                own=own,
                rate_bps=c.rate_bps,
                base=format_amount(c.base),
                amount=format_amount(c.amount),
                reversed=format_amount(c.reversed),
                net_amount=format_amount(c.amount - c.reversed),
                status=c.status if own else None,
            )
        )
    refunds: dict[int, list[SellerOrderRefund]] = {}
    for r in await repo.refunds_of(session, ids):
        refunds.setdefault(r.order_id, []).append(
            SellerOrderRefund(
                id=r.id, external_id=r.external_id, amount=format_amount(r.amount), created_at=r.created_at
            )
        )
    buyer_refs = shown_buyer_refs(settings.secret_key, [(r.buyer_ref_enc, r.buyer_ref_hash) for r in rows])
    return [
        SellerOrder(
            id=r.id,
            source=r.source,
            external_id=r.external_id,
            status=order_status(r.amount, r.refunded_amount),
            card_number=r.card_number,
            amount=format_amount(r.amount),
            currency=r.currency,
            category=r.category,
            channel=r.channel,
            placed_at=r.placed_at,
            created_at=r.created_at,
            refunded_amount=format_amount(r.refunded_amount),
            remaining_amount=format_amount(r.amount - r.refunded_amount),
            buyer_ref=buyer_ref,
            commissions=lines.get(r.id, []),
            refunds=refunds.get(r.id, []),
        )
        for r, buyer_ref in zip(rows, buyer_refs, strict=True)
    ]
