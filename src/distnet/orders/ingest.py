"""Orders: idempotent ingest of single orders, and what every accepted order goes through.

Every accepted order is attributed by the one set-based statement of commissions.repository,
in the same database transaction as the order row, its ledger postings, its sales rollup, the
rank upgrade check and its ``order.created`` event."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits import service as benefits
from distnet.cards.errors import CardCancelled, CardNotFound
from distnet.commissions import repository as commissions_repo
from distnet.kit import pg
from distnet.kit.auth import Principal, Role
from distnet.kit.crypto import encrypt, keyed_hash
from distnet.kit.errors import DistnetError, IdempotencyConflict, ValidationFailed
from distnet.kit.money import check_currency, parse_amount
from distnet.ledger.service import ensure_platform_accounts
from distnet.models import Card, Hold
from distnet.models.network import VIOLATION_REASONS
from distnet.orders import repository as repo
from distnet.orders.errors import CardFrozen, CardSuspended, MaintenanceInProgress, SellerClosed
from distnet.orders.schemas import OrderCreate, OrderView, RankChange
from distnet.orders.views import new_order_view, order_views, points_item
from distnet.points import service as points
from distnet.ranks import service as ranks
from distnet.settings import Settings

CLOCK_SKEW = timedelta(minutes=2)
"""placed_at may be this far ahead of our clock (client clocks drift); further is refused."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PreparedOrder:
    source: str
    external_id: str
    card_number: str
    amount: int
    currency: str
    category: str | None
    channel: str | None
    placed_at: datetime | None
    buyer: dict[str, bytes | None]
    body_hash: bytes
    buyer_ref: str | None = None
    """As the seller supplied it: stored encrypted (``buyer_ref_enc``), never in the body hash."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.external_id)


BUYER_HASHES = ("buyer_ref_hash", "buyer_device_hash", "buyer_ip_hash", "buyer_payment_hash")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical_hash(
    source: str,
    external_id: str,
    card_number: str,
    amount: int,
    currency: str,
    category: str | None,
    channel: str | None,
    placed_at: datetime | None,
    buyer: list[bytes | None],
) -> bytes:
    """SHA-256 of the order's canonical fields (buyer data only as keyed hashes). The CSV import
    computes the same in SQL (orders/importer.py): an order replayed through either path matches."""
    parts = [
        source,
        external_id,
        card_number,
        str(amount),
        currency,
        category or "",
        channel or "",
        "" if placed_at is None else str((placed_at - EPOCH) // timedelta(microseconds=1)),
        *[b.hex() if b else "" for b in buyer],
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def prepare(data: OrderCreate, settings: Settings, now: datetime) -> PreparedOrder:
    """Validate beyond the schema (money, currency, time) and compute the canonical body hash."""
    amount = parse_amount(data.amount, field="amount")
    currency = check_currency(data.currency, settings.business.default_currency)
    if data.placed_at is not None:
        if data.placed_at > now + CLOCK_SKEW:
            raise ValidationFailed("placed_at must not be in the future", field="placed_at")
        if data.placed_at < EARLIEST:
            raise ValidationFailed("placed_at is before 2000-01-01", field="placed_at")
    buyer = data.buyer
    secret = settings.secret_key
    hashes = {
        "buyer_ref_hash": keyed_hash(secret, "buyer_ref", buyer.ref if buyer else None),
        "buyer_device_hash": keyed_hash(secret, "device", buyer.device_id if buyer else None),
        "buyer_ip_hash": keyed_hash(secret, "ip", buyer.ip if buyer else None),
        "buyer_payment_hash": keyed_hash(secret, "payment", buyer.payment_fingerprint if buyer else None),
    }
    placed_at = data.placed_at.astimezone(UTC) if data.placed_at else None
    body_hash = canonical_hash(
        data.source,
        data.external_id,
        data.card_number,
        amount,
        currency,
        data.category,
        data.channel,
        placed_at,
        [hashes[k] for k in BUYER_HASHES],
    )
    return PreparedOrder(
        source=data.source,
        external_id=data.external_id,
        card_number=data.card_number,
        amount=amount,
        currency=currency,
        category=data.category,
        channel=data.channel,
        placed_at=placed_at,
        buyer=hashes,
        body_hash=body_hash,
        buyer_ref=buyer.ref if buyer else None,
    )


def sell_refusal(
    card: Any, seller_status: str | None, holds: list[Hold], now: datetime
) -> DistnetError | None:
    """Why this card may not sell now, as the error to answer with; None when it may."""
    if card.cancelled_at is not None:
        return CardCancelled(f"card {card.number} is cancelled")
    if card.frozen_at is not None:
        return CardFrozen(f"card {card.number} is frozen: a loss was reported")
    if seller_status == "closed":
        return SellerClosed("the selling distributor's account is closed")
    violations = [h for h in holds if h.reason in VIOLATION_REASONS]
    if violations:
        first = violations[0]
        return CardSuspended(
            f"card {card.number} is suspended by hold {first.id} ({first.reason})",
            extra={"hold": _hold_ref(first), "holds": [_hold_ref(h) for h in violations]},
        )
    maintenance = [h for h in holds if h.reason == "maintenance"]
    if maintenance:
        ends = [h.ends_at for h in maintenance if h.ends_at is not None]
        retry = max(1, math.ceil((max(ends) - now).total_seconds())) if ends else 60
        return MaintenanceInProgress(
            f"card {card.number} is suspended for system maintenance; retry in {retry} seconds",
            extra={"hold": _hold_ref(maintenance[0]), "retry_after": retry},
            headers={"Retry-After": str(retry)},
        )
    return None


def _hold_ref(h: Hold) -> dict[str, Any]:
    return {
        "id": h.id,
        "reason": h.reason,
        "since": h.started_at.isoformat(),
        "ends_at": h.ends_at.isoformat() if h.ends_at else None,
        "appealable": h.appealable,
    }


def order_row(p: PreparedOrder, card: Card, now: datetime, buyer_ref_enc: bytes | None) -> dict[str, Any]:
    return {
        "source": p.source,
        "external_id": p.external_id,
        "body_hash": p.body_hash,
        "card_id": card.id,
        "seller_id": card.distributor_id,
        "amount": p.amount,
        "currency": p.currency,
        "category": p.category,
        "channel": p.channel,
        "placed_at": p.placed_at or now,
        **p.buyer,
        "buyer_ref_enc": buyer_ref_enc,
    }


async def accept(
    session: AsyncSession,
    settings: Settings,
    orders: str,
    params: dict[str, Any],
    *,
    currencies: set[str],
    aggregate: bool,
    ref_type: str,
    ref_id: object,
    rows: bool | None = None,
) -> dict[str, Any]:
    """Everything that follows the insert of new orders, set-based over ``orders`` (a query of
    their ids): commissions with their ledger transaction, sales rollup and ``order.created``
    events, rank upgrades. (A single order in the default currency does the same in one
    statement, orders.repository.SINGLE.)"""
    default = settings.business.default_currency
    if not await repo.has_commission_plan(session):
        await commissions_repo.ensure_default_plan(session)
    for currency in currencies:
        await ensure_platform_accounts(session, currency=currency)
    if currencies - {default}:
        await commissions_repo.ensure_accounts_for(session, orders, params, default)
    if aggregate and not rows:  # an import: any number of orders, attributed a million at a time
        result = await commissions_repo.attribute_in_chunks(
            session, orders, params, cap=settings.business.max_levels_cap, ref_type=ref_type, ref_id=ref_id
        )
    else:
        result = await commissions_repo.attribute(
            session,
            orders,
            params,
            cap=settings.business.max_levels_cap,
            aggregate=aggregate,
            ref_type=ref_type,
            ref_id=ref_id,
            rows=rows,
        )
    await repo.add_sales_and_events(session, orders, params)
    result["rank_changes"] = await ranks.upgrade_after_orders(session, orders=orders, params=params)
    # after the upgrade: an order that lifts its seller's rank earns at the new rank (benefits are instant)
    result["points"] = await points.earn_for_orders(
        session, settings=settings, orders=orders, params=params, ref_type=ref_type, ref_id=ref_id
    )
    return result


async def create_order(
    session: AsyncSession, settings: Settings, principal: Principal, data: OrderCreate
) -> tuple[int, OrderView]:
    """One order in two round trips, no BEGIN and no COMMIT (the session runs each statement in its
    own transaction, kit/unit_of_work ONE_STATEMENT): one lookup (card, seller, hold flag, replay,
    readiness), then one statement that inserts the order and writes its commissions and their
    ledger transaction, sales credit, event, rank upgrades and points (their own ledger
    transaction). The first order in a currency or on an emptied database opens a transaction for
    its several statements. The 201 body is built from the rows just written."""
    now = datetime.now(UTC)
    prepared = prepare(data, settings, now)
    found = await repo.lookup_single(session, prepared.card_number, prepared.key, prepared.currency)
    card = found.card
    if card is None or not (principal.has(Role.admin) or principal.distributor_id == card.distributor_id):
        # a distributor sells on their own card only; never confirm that another's card exists
        raise CardNotFound(f"no card {prepared.card_number}")
    existing = found.existing
    if existing is None:
        holds = await repo.active_holds(session, card.distributor_id) if found.held else []
        refusal = sell_refusal(card, found.seller_status, holds, now)
        if refusal is not None:
            raise refusal
        row = order_row(prepared, card, now, encrypt(settings.secret_key, prepared.buyer_ref))
        if found.ready and prepared.currency == settings.business.default_currency:
            # the common case: one statement writes the order and everything it causes; whole on
            # its own, it needs no BEGIN and no COMMIT (two of four round trips, issue 19)
            result = await commissions_repo.attribute(
                session,
                "",
                {**row, **ranks.ladder_params(), "expiry_months": settings.ranks.points_expiry_months},
                cap=settings.business.max_levels_cap,
                aggregate=False,
                ref_type="order",
                ref_id=None,
                statement=repo.SINGLE,
            )
            first = result["first"]
            order_id, created_at = first["new_order_id"], first["new_order_created_at"]
            if order_id is not None:
                result["rank_changes"] = first["rank_changes"] or []
                result["points"] = points.earned_in_statement(first)
        else:  # first order in a currency, or on an emptied database: open accounts, plan first
            await pg.begin(session)  # several statements, one transaction
            inserted = await repo.insert_orders(session, [row])
            order_id = created_at = None
            if inserted:
                order_id, _, _, created_at = inserted[0]
                result = await accept(
                    session,
                    settings,
                    repo.ORDER_IDS,
                    {"order_ids": [order_id]},
                    currencies={prepared.currency},
                    aggregate=False,
                    ref_type="order",
                    ref_id=order_id,
                )
        if order_id is not None:
            view = new_order_view(order_id, created_at, row, card.number, result["rows"], prepared.buyer_ref)
            return 201, await _with_benefits(session, view, result)
        # lost a race with a concurrent duplicate: it committed first, answer as a replay
        existing = (await repo.existing_orders(session, [prepared.key]))[prepared.key]
    order_id, body_hash = existing
    if body_hash != prepared.body_hash:
        raise IdempotencyConflict(
            f"order {prepared.source}/{prepared.external_id} exists with a different body",
            extra={"order_id": order_id},
        )
    return 200, (await order_views(session, [order_id], secret=settings.secret_key))[0]


async def _with_benefits(session: AsyncSession, view: OrderView, result: dict[str, Any]) -> OrderView:
    """The points the order earned (as GET shows them); and when the order changed ranks, only
    in this first answer: the changes and, when the seller's rank moved, the seller's benefits as
    they are now, in this same transaction (seed 000: no delay)."""
    view.points_earned = [points_item(p) for p in result.get("points", [])]
    changes = result.get("rank_changes", [])
    if changes:
        view.rank_changes = [
            RankChange(distributor_id=c["id"], from_=c["old_rank"], to=c["new_rank"]) for c in changes
        ]
        seller = view.seller_id
        if any(c["id"] == seller for c in changes):
            view.seller_benefits = await benefits.my_benefits(session, distributor_id=seller)
    return view
