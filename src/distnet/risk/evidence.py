"""What a hold or a case rests on, in a form its owner can answer in an appeal: the orders the rule
counted, the rule and its parameters in words, and whether an appeal is still possible.

``orders_behind`` is the one query for "the orders behind a hold or case": the owner's view passes
``seller_id`` and gets only their own orders (never another distributor's personal data); the
review console's case page passes none and gets every order with its seller's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.money import format_amount
from distnet.models import Appeal, Hold, RiskRuleVersion
from distnet.orders.views import shown_buyer_refs
from distnet.risk import repository as repo

MAX_LISTED = 200
"""At most this many orders are listed (newest first); ``orders_total`` still counts them all."""


@dataclass(frozen=True, slots=True)
class EvidenceOrder:
    id: int
    external_id: str
    placed_at: datetime
    amount: str
    currency: str
    refunded_amount: str
    buyer_ref: str | None
    """As the seller supplied it (masked on orders stored before it was kept readable)."""
    seller_code: str
    buyer_key: str | None
    """A short stand-in for the buyer fingerprint (equal buyers, equal keys); not the value."""


@dataclass(frozen=True, slots=True)
class OrdersBehind:
    orders: list[EvidenceOrder]
    total: int
    buyers: int
    """Distinct buyer fingerprints among all the counted orders (not only the listed ones)."""


async def orders_behind(
    session: AsyncSession,
    secret: bytes,
    order_ids: list[int],
    *,
    seller_id: int | None,
    limit: int = MAX_LISTED,
) -> OrdersBehind:
    """The orders among ``order_ids`` (of ``seller_id`` only, when given), newest first."""
    ids = sorted({int(i) for i in order_ids if isinstance(i, int) or str(i).isdigit()})
    if not ids:
        return OrdersBehind([], 0, 0)
    params: dict[str, Any] = {"ids": ids, "seller": seller_id, "limit": limit}
    of_seller = seller_id is not None
    counts = (await session.execute(repo.orders_behind_counts(of_seller=of_seller), params)).one()
    rows = list(await session.execute(repo.orders_behind(of_seller=of_seller), params))
    refs = shown_buyer_refs(secret, [(r.buyer_ref_enc, r.buyer_ref_hash) for r in rows])
    return OrdersBehind(
        orders=[
            EvidenceOrder(
                id=r.id,
                external_id=r.external_id,
                placed_at=r.placed_at,
                amount=format_amount(r.amount),
                currency=r.currency,
                refunded_amount=format_amount(r.refunded_amount),
                buyer_ref=ref,
                seller_code=r.seller_code,
                buyer_key=bytes(r.buyer_ref_hash).hex()[:6] if r.buyer_ref_hash else None,
            )
            for r, ref in zip(rows, refs, strict=True)
        ],
        total=int(counts.n),
        buyers=int(counts.buyers),
    )


async def rule_params(session: AsyncSession, rule: str | None, version: int | None) -> dict[str, Any]:
    """The parameters of the rule version that placed the hold (not today's)."""
    if rule is None or version is None:
        return {}
    params = await session.scalar(
        select(RiskRuleVersion.params).where(RiskRuleVersion.name == rule, RiskRuleVersion.version == version)
    )
    if params is None:
        from distnet.risk.rules import defaults

        try:
            return defaults(rule)
        except KeyError:
            return {}
    return dict(params)


def _n(value: Any, one: str, many: str) -> str:
    return f"{value} {one if value == 1 else many}"


def _pct(value: Any) -> str:
    try:
        return f"{float(value):.0%}"
    except (TypeError, ValueError):
        return str(value)


def explain(
    rule: str | None,
    reason: str,
    params: dict[str, Any],
    evidence: dict[str, Any],
    behind: OrdersBehind | None = None,
    note: str | None = None,
) -> str:
    """The rule and its parameters in words, with the owner's own counts where the rule counts
    orders: "38 orders from 4 buyers within 60 minutes; the limit is a ratio of 3"."""
    p, e = params, evidence or {}
    n = behind.total if behind is not None else e.get("orders")
    if reason == "maintenance":
        return "Suspended for announced system maintenance; it ends by itself at the end of the window."
    if rule is None:
        return f"Placed by a risk reviewer ({reason})" + (f": {note}" if note else ".")
    if rule == "buyer_concentration":
        buyers = behind.buyers if behind is not None else len(e.get("suspicious_buyers", []))
        return (
            f"{_n(n, 'order', 'orders')} from {_n(buyers, 'buyer', 'buyers')} within "
            f"{p.get('window_minutes')} minutes; the limit is a ratio of {p.get('min_ratio')} orders per "
            f"buyer (highest found: {e.get('max_ratio')})."
        )
    if rule == "order_velocity":
        return (
            f"{_n(e.get('orders_in_window', n), 'order', 'orders')} within {p.get('window_minutes')} minutes "
            f"(from {e.get('window_start')} to {e.get('window_end')}); the limit is {p.get('max_orders')}."
        )
    if rule == "repeat_buyer":
        return (
            f"{_n(e.get('orders', n), 'order', 'orders')} from one buyer within {p.get('days')} days; "
            f"the limit is {p.get('min_orders')} orders per buyer."
        )
    if rule == "refund_ratio":
        return (
            f"{e.get('refunded')} of {e.get('sales')} refunded ({_pct(e.get('ratio'))}) over "
            f"{_n(e.get('orders', n), 'order', 'orders')} within {p.get('days')} days; the limit is "
            f"{_pct(p.get('ratio'))} from {p.get('min_orders')} orders."
        )
    if rule == "self_purchase":
        relation = e.get("relation", "")
        who = (
            "your own"
            if relation == "self"
            else f"a distributor {str(relation).rsplit('_', 1)[-1]} level(s) above you"
        )
        return (
            f"The buyer of {_n(n, 'order', 'orders')} matches {who} identifiers "
            f"({', '.join(e.get('matched_by', [])) or 'fingerprint'}); checked {p.get('levels')} levels up "
            f"within {p.get('lookback_days')} days."
        )
    if rule == "circular_orders":
        steps = len(e.get("cycle", e.get("steps", []))) or "several"
        return (
            f"Orders went around a cycle of {steps} distributors within {p.get('lookback_days')} days "
            f"({_n(n, 'order', 'orders')} of yours); cycles of up to {p.get('max_cycle')} are checked."
        )
    if rule == "self_referral":
        return (
            f"A recruit shares an identifier ({', '.join(i.get('kind', '?') for i in e.get('shared_identifiers', []))}) "
            f"with a distributor {e.get('level')} level(s) above it; {p.get('levels')} levels are checked."
        )
    if rule == "identity_cluster":
        return (
            f"{e.get('size')} accounts are linked by shared device, phone or payment identifiers; "
            f"the limit is {p.get('min_size')}."
        )
    if rule == "recruit_burst":
        return (
            f"{e.get('recruits_in_window')} recruits within {p.get('window_minutes')} minutes, "
            f"{e.get('recruits_with_sales')} of them with sales; the limit is {p.get('min_recruits')} recruits "
            f"with at most {_pct(p.get('max_active_share'))} selling."
        )
    if rule == "unpaid_balance":
        return (
            f"{e.get('owed')} owed since {e.get('owed_since')}, longer than {p.get('grace_days')} days; "
            f"the limit is {p.get('min_owed')}. The hold lifts itself when the debt is repaid."
        )
    return f"Rule {rule} ({reason})."


@dataclass(frozen=True, slots=True)
class Appealability:
    appealable: bool
    reason: str | None
    """Why not, in words, when not."""
    submissions: int
    max_submissions: int


async def appealability(session: AsyncSession, hold: Hold, *, max_submissions: int) -> Appealability:
    """Whether the owner can appeal the hold now, and why not: the same conditions as
    ``appeals.submit`` refuses with, so the answer never promises an appeal that would fail."""
    statuses = list(await session.scalars(select(Appeal.status).where(Appeal.hold_id == hold.id)))
    used = len(statuses)
    reason = None
    if not hold.appealable or hold.reason == "maintenance":
        reason = "maintenance holds end by themselves and cannot be appealed"
    elif hold.outcome == "cleared":
        reason = "this hold was cleared: there is nothing to appeal"
    elif hold.outcome == "confirmed" and hold.money_settled_at is not None:
        reason = "the appeal path of this hold is exhausted"
    elif any(s not in ("approved", "rejected") for s in statuses):
        reason = "an appeal of this hold is open"
    elif used >= max_submissions:
        reason = f"this hold was appealed {used} times, the most allowed ({max_submissions})"
    return Appealability(reason is None, reason, used, max_submissions)
