"""Refunds of orders: the refund row, its commissions reversed as one balanced ledger
transaction, the points reversed (the seller's in proportion, the sponsor's referral once the
order no longer qualifies), the sales credit taken back, and the events."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions.rules import reversal_due, reversal_lines
from distnet.kit import outbox
from distnet.kit.auth import Principal, Role
from distnet.kit.errors import IdempotencyConflict
from distnet.kit.money import format_amount, parse_amount
from distnet.ledger.service import Posting, ensure_accounts, ensure_platform_accounts, post
from distnet.models import Order, Refund
from distnet.orders import repository as repo
from distnet.orders.errors import OrderFullyRefunded, OrderNotFound, RefundExceedsRemaining
from distnet.orders.schemas import RefundCreate, RefundView
from distnet.orders.views import order_views, visible_order
from distnet.points import service as points
from distnet.ranks import service as ranks
from distnet.settings import Settings


async def refund(
    session: AsyncSession, settings: Settings, principal: Principal, order_id: int, data: RefundCreate
) -> tuple[int, RefundView]:
    amount = parse_amount(data.amount, field="amount")
    order = await visible_order(session, principal, order_id, lock=True)
    if not principal.has(Role.admin) and principal.distributor_id != order.seller_id:
        raise OrderNotFound(f"no order {order_id}")
    prior = await repo.refund_by_external_id(session, order.id, data.external_id)
    if prior is not None:
        if prior.amount != amount:
            raise IdempotencyConflict(
                f"refund {data.external_id} exists with amount {format_amount(prior.amount)}",
                extra={"refund_id": prior.id},
            )
        return 200, await _refund_view(session, settings, prior)
    remaining = order.amount - order.refunded_amount
    if remaining == 0:
        raise OrderFullyRefunded(f"order {order.id} is already fully refunded")
    if amount > remaining:
        raise RefundExceedsRemaining(
            f"refund {format_amount(amount)} exceeds the remaining {format_amount(remaining)}",
            extra={
                "errors": [{"field": "amount", "message": f"at most {format_amount(remaining)}"}],
                "remaining_amount": format_amount(remaining),
            },
        )
    refunded_total = order.refunded_amount + amount
    order.refunded_amount = refunded_total
    new_refund = await repo.add_refund(session, order.id, data.external_id, amount)
    debts = await reverse_commissions(session, settings, order, refunded_total, refund_id=new_refund.id)
    await points.reverse_for_refund(
        session,
        order_id=order.id,
        seller_id=order.seller_id,
        order_amount=order.amount,
        refunded_total=refunded_total,
        refund_id=new_refund.id,
    )
    await repo.add_sales(
        session,
        repo.ORDER_IDS,
        {"order_ids": [order.id], "refund": amount},
        amount_sql="-CAST(:refund AS bigint)",
    )
    await ranks.warn_after_refund(session, seller_id=order.seller_id, refund_id=new_refund.id)
    await outbox.emit(
        session,
        "order.refunded",
        {
            "order_id": order.id,
            "refund_id": new_refund.id,
            "external_id": data.external_id,
            "amount": format_amount(amount),
            "refunded_total": format_amount(refunded_total),
        },
        distributor_id=order.seller_id,
    )
    for d in debts:
        await outbox.emit(session, "debt.created", d, distributor_id=d["distributor_id"])
    return 201, await _refund_view(session, settings, new_refund)


async def reverse_commissions(
    session: AsyncSession, settings: Settings, order: Order, refunded_total: int, *, refund_id: int
) -> list[dict[str, Any]]:
    """Reverse each commission of ``order`` to floor(amount * refunded_total / order amount), by
    its current status (ARCHITECTURE ledger table), as ONE balanced ledger transaction.
    Returns the debts created (reversals of available money beyond the balance, or of paid money).

    Locks: the order row is already locked by the caller. Ledger accounts are locked next, in the
    one lock order of every writer (ARCHITECTURE.md, "Lock order": distributors' accounts by id,
    then platform accounts), and only then the commission rows, so a settlement, payout or hold
    decision touching the same distributor cannot deadlock us. The platform commission_expense
    row is NOT locked here: its balance is applied at commit, as the last lock we take."""
    beneficiaries = await repo.commission_beneficiaries(session, order.id)
    if not beneficiaries:
        return []
    currency = order.currency
    await ensure_platform_accounts(session, currency=currency)
    await ensure_accounts(session, distributor_ids=beneficiaries, currency=currency)
    balances = await repo.lock_reversal_accounts(session, currency, beneficiaries, order.seller_id, order.id)
    rows = await repo.lock_commissions(session, order.id)
    postings: list[Posting] = []
    debts: list[dict[str, Any]] = []
    updates: list[tuple[int, int]] = []
    for c in rows:
        r = reversal_due(c.amount, refunded_total, order.amount, c.reversed)
        if r == 0:
            continue
        available = balances.get((c.beneficiary_id, "available"), 0)
        for kind, amount, platform in reversal_lines(c.status, r, available):
            postings.append(Posting(kind, amount, None if platform else c.beneficiary_id, c.id))
            if kind == "available":
                balances[(c.beneficiary_id, "available")] = available + amount
            if kind == "owed":
                debts.append(
                    {
                        "distributor_id": c.beneficiary_id,
                        "amount": format_amount(-amount),
                        "commission_id": c.id,
                        "order_id": order.id,
                        "refund_id": refund_id,
                        "reason": "refund_clawback",
                    }
                )
        updates.append((c.id, r))
    if not updates:
        return []
    await post(
        session,
        kind="commission.reversed",
        postings=postings,
        ref_type="refund",
        ref_id=refund_id,
        memo=f"refund of order {order.id}",
        currency=currency,
    )
    await repo.add_reversed(session, updates)
    return debts


async def _refund_view(session: AsyncSession, settings: Settings, r: Refund) -> RefundView:
    view = (await order_views(session, [r.order_id], secret=settings.secret_key))[0]
    return RefundView(
        id=r.id,
        order_id=r.order_id,
        external_id=r.external_id,
        amount=format_amount(r.amount),
        created_at=r.created_at,
        order=view,
    )
