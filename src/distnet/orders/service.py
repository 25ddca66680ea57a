"""Orders: idempotent ingest (single, batch, import), commission attribution, refunds.

Every accepted order is attributed by the one set-based statement of commissions.repository,
in the same database transaction as the order row, its ledger postings, its sales rollup, the
rank upgrade check and its ``order.created`` event."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits import service as benefits
from distnet.cards import service as cards
from distnet.cards.errors import CardCancelled, CardNotFound
from distnet.commissions import repository as commissions_repo
from distnet.commissions.rules import reversal_due, reversal_lines
from distnet.commissions.service import skipped_levels
from distnet.kit import outbox
from distnet.kit.auth import Principal, Role
from distnet.kit.crypto import decrypt_many, encrypt, encrypt_many, keyed_hash
from distnet.kit.errors import DistnetError, IdempotencyConflict, ValidationFailed
from distnet.kit.masking import mask_name
from distnet.kit.money import check_currency, format_amount, parse_amount
from distnet.kit.pagination import check_limit, decode_cursor, encode_cursor
from distnet.ledger.service import Posting, ensure_accounts, ensure_platform_accounts, post
from distnet.models import Card, Distributor, Hold, Order, Refund
from distnet.models.network import VIOLATION_REASONS
from distnet.network.service import visible_distributor
from distnet.orders import repository as repo
from distnet.orders.errors import (
    CardFrozen,
    CardSuspended,
    MaintenanceInProgress,
    OrderFullyRefunded,
    OrderNotFound,
    RefundExceedsRemaining,
    SellerClosed,
)
from distnet.orders.schemas import (
    OrderCreate,
    PersonRef,
    RefundCreate,
    SellerOrder,
    SellerOrderCommission,
    SellerOrderPage,
    SellerOrderRefund,
)
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


def canonical_hash(source: str, external_id: str, card_number: str, amount: int, currency: str,
                   category: str | None, channel: str | None, placed_at: datetime | None,
                   buyer: list[bytes | None]) -> bytes:
    """SHA-256 of the order's canonical fields (buyer data only as keyed hashes). The CSV import
    computes the same in SQL (orders/importer.py): an order replayed through either path matches."""
    parts = [source, external_id, card_number, str(amount), currency, category or "", channel or "",
             "" if placed_at is None else str((placed_at - EPOCH) // timedelta(microseconds=1)),
             *[b.hex() if b else "" for b in buyer]]
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
        data.source, data.external_id, data.card_number, amount, currency, data.category, data.channel,
        placed_at, [hashes[k] for k in BUYER_HASHES],
    )
    return PreparedOrder(
        source=data.source, external_id=data.external_id, card_number=data.card_number, amount=amount,
        currency=currency, category=data.category, channel=data.channel,
        placed_at=placed_at, buyer=hashes, body_hash=body_hash, buyer_ref=buyer.ref if buyer else None,
    )


def sell_refusal(card: Any, seller_status: str | None, holds: list[Hold], now: datetime) -> DistnetError | None:
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
    return {"id": h.id, "reason": h.reason, "since": h.started_at.isoformat(),
            "ends_at": h.ends_at.isoformat() if h.ends_at else None, "appealable": h.appealable}


def _row(p: PreparedOrder, card: Card, now: datetime, buyer_ref_enc: bytes | None) -> dict[str, Any]:
    return {
        "source": p.source, "external_id": p.external_id, "body_hash": p.body_hash, "card_id": card.id,
        "seller_id": card.distributor_id, "amount": p.amount, "currency": p.currency, "category": p.category,
        "channel": p.channel, "placed_at": p.placed_at or now, **p.buyer, "buyer_ref_enc": buyer_ref_enc,
    }


MASK = "****"


def shown_buyer_refs(secret: bytes, stored: list[tuple[bytes | None, bytes | None]]) -> list[str | None]:
    """The buyer reference of each (buyer_ref_enc, buyer_ref_hash) as the owner and reviewers see
    it: decrypted, or for orders stored before it was kept (hash only) masked as ``****`` and the
    first six hex digits of its keyed hash, so that orders of one buyer still read alike."""
    plain = decrypt_many(secret, [enc for enc, _ in stored])
    return [value if value is not None else (MASK + bytes(h).hex()[:6] if h is not None else None)
            for value, (_, h) in zip(plain, stored, strict=True)]


async def _cards(session: AsyncSession, numbers: list[str]) -> dict[str, tuple[Any, str, list[Hold]]]:
    """Cards by number with their seller's status and active holds (three queries for any count)."""
    # plain rows, not Card instances: a batch reads up to 1,000 cards (ORM identity-map work was
    # 40 ms of a batch); sell_refusal and _row read the same attributes from either
    rows = [
        (r, r.status) for r in await session.execute(
            select(Card.id, Card.number, Card.distributor_id, Card.frozen_at, Card.cancelled_at, Distributor.status)
            .join(Distributor, Distributor.id == Card.distributor_id)
            .where(Card.number.in_(set(numbers)))
        )
    ]
    owners = {card.distributor_id for card, _ in rows}
    holds: dict[int, list[Hold]] = {}
    if owners:
        found = await session.scalars(
            select(Hold).where(Hold.distributor_id.in_(owners), cards.hold_is_active())
            .order_by(Hold.started_at, Hold.id)
        )
        for h in found:
            holds.setdefault(h.distributor_id, []).append(h)
    return {card.number: (card, status, holds.get(card.distributor_id, [])) for card, status in rows}


async def accept(session: AsyncSession, settings: Settings, orders: str, params: dict[str, Any], *,
                 currencies: set[str], aggregate: bool, ref_type: str, ref_id: object,
                 rows: bool | None = None) -> dict[str, Any]:
    """Everything that follows the insert of new orders, set-based over ``orders`` (a query of
    their ids): commissions with their ledger transaction, sales rollup and ``order.created``
    events, rank upgrades. (A single order in the default currency does the same in one
    statement, orders.repository.SINGLE.)"""
    default = settings.business.default_currency
    if not await session.scalar(text("SELECT EXISTS (SELECT 1 FROM commission_plan)")):
        await commissions_repo.ensure_default_plan(session)
    for currency in currencies:
        await ensure_platform_accounts(session, currency)
    if currencies - {default}:
        await commissions_repo.ensure_accounts_for(session, orders, params, default)
    if aggregate and not rows:  # an import: any number of orders, attributed a million at a time
        result = await commissions_repo.attribute_in_chunks(
            session, orders, params, cap=settings.business.max_levels_cap, ref_type=ref_type, ref_id=ref_id)
    else:
        result = await commissions_repo.attribute(
            session, orders, params, cap=settings.business.max_levels_cap, aggregate=aggregate,
            ref_type=ref_type, ref_id=ref_id, rows=rows,
        )
    await repo.add_sales_and_events(session, orders, params)
    result["rank_changes"] = await ranks.upgrade_after_orders(session, orders, params)
    # after the upgrade: an order that lifts its seller's rank earns at the new rank (benefits are instant)
    result["points"] = await points.earn_for_orders(session, settings, orders, params, ref_type=ref_type, ref_id=ref_id)
    return result


async def create_order(session: AsyncSession, settings: Settings, principal: Principal,
                       data: OrderCreate) -> tuple[int, dict[str, Any]]:
    """One order in four round trips: one lookup (card, seller, hold flag, replay, readiness), one
    statement that inserts the order and writes its commissions, ledger transaction, sales credit
    and event, the rank check, and commit. The 201 body is built from the rows just written."""
    now = datetime.now(UTC)
    prepared = prepare(data, settings, now)
    found = await repo.lookup_single(session, prepared.card_number, prepared.key, prepared.currency)
    card = found.card
    if card is None or not (principal.has(Role.admin) or principal.distributor_id == card.distributor_id):
        # a distributor sells on their own card only; never confirm that another's card exists
        raise CardNotFound(f"no card {prepared.card_number}")
    existing = found.existing
    if existing is None:
        holds = await _active_holds(session, card.distributor_id) if found.held else []
        refusal = sell_refusal(card, found.seller_status, holds, now)
        if refusal is not None:
            raise refusal
        row = _row(prepared, card, now, encrypt(settings.secret_key, prepared.buyer_ref))
        if found.ready and prepared.currency == settings.business.default_currency:
            # the common case: insert, attribution, sales and event are one statement
            result = await commissions_repo.attribute(
                session, "", row, cap=settings.business.max_levels_cap,
                aggregate=False, ref_type="order", ref_id=None, statement=repo.SINGLE)
            order_id, created_at = result["first"]["new_order_id"], result["first"]["new_order_created_at"]
            if order_id is not None:
                ids = {"order_ids": [order_id]}
                result["rank_changes"] = await ranks.upgrade_after_orders(session, repo.ORDER_IDS, ids)
                result["points"] = await points.earn_for_orders(session, settings, repo.ORDER_IDS, ids,
                                                                ref_type="order", ref_id=order_id)
        else:  # first order in a currency, or on an emptied database: open accounts, plan first
            inserted = await repo.insert_orders(session, [row])
            order_id = created_at = None
            if inserted:
                order_id, _, _, created_at = inserted[0]
                result = await accept(session, settings, repo.ORDER_IDS, {"order_ids": [order_id]},
                                      currencies={prepared.currency}, aggregate=False, ref_type="order",
                                      ref_id=order_id)
        if order_id is not None:
            view = _new_order_view(order_id, created_at, row, card.number, result["rows"], prepared.buyer_ref)
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


async def _active_holds(session: AsyncSession, distributor_id: int) -> list[Hold]:
    return list(await session.scalars(
        select(Hold).where(Hold.distributor_id == distributor_id, cards.hold_is_active())
        .order_by(Hold.started_at, Hold.id)
    ))


def _new_order_view(order_id: int, created_at: datetime, row: dict[str, Any], card_number: str,
                    commissions: list[dict[str, Any]], buyer_ref: str | None) -> dict[str, Any]:
    """The view of an order just written (what order_views would read back)."""
    amount = row["amount"]
    return {
        "id": order_id, "source": row["source"], "external_id": row["external_id"], "status": "completed",
        "card_number": card_number, "seller_id": row["seller_id"], "amount": format_amount(amount),
        "currency": row["currency"], "category": row["category"], "channel": row["channel"],
        "placed_at": row["placed_at"], "created_at": created_at, "refunded_amount": format_amount(0),
        "remaining_amount": format_amount(amount), "buyer_ref": buyer_ref if row["buyer_ref_enc"] else None,
        "commissions": [commission_view(c) for c in commissions], "refunds": [],
    }


def _points_item(lot: Any) -> dict[str, Any]:
    return {"distributor_id": lot["distributor_id"], "source": lot["source"], "points": lot["points"]}


async def _with_benefits(session: AsyncSession, view: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The points the order earned (as GET shows them); and when the order changed ranks, only
    in this first answer: the changes and, when the seller's rank moved, the seller's benefits as
    they are now, in this same transaction (seed 000: no delay)."""
    view["points_earned"] = [_points_item(p) for p in result.get("points", [])]
    changes = result.get("rank_changes", [])
    if changes:
        view["rank_changes"] = [{"distributor_id": c["id"], "from": c["old_rank"], "to": c["new_rank"]}
                                for c in changes]
        seller = view["seller_id"]
        if any(c["id"] == seller for c in changes):
            view["seller_benefits"] = msgspec.to_builtins(await benefits.my_benefits(session, seller))
    return view


def _problem(exc: DistnetError) -> dict[str, Any]:
    body = exc.to_problem()
    body.pop("type", None)
    return body


async def create_batch(session: AsyncSession, settings: Settings, principal: Principal,
                       raw_orders: list[Any]) -> dict[str, Any]:
    """Up to 1,000 orders: each is validated on its own and answered in its result, in input
    order: ``created`` (201), ``replayed`` (200) or ``error`` with its problem. Accepted orders
    are attributed in one statement; their postings form one ledger transaction, aggregated per
    (beneficiary, account) (commission_id null on those postings)."""
    now = datetime.now(UTC)
    results: list[dict[str, Any] | None] = [None] * len(raw_orders)
    prepared: list[tuple[int, PreparedOrder]] = []
    for i, raw in enumerate(raw_orders):
        try:
            data = msgspec.convert(raw, OrderCreate, strict=True)
            prepared.append((i, prepare(data, settings, now)))
        except msgspec.ValidationError as exc:
            err = ValidationFailed(str(exc), field=_field_of(str(exc)))
            results[i] = {"index": i, "status": "error", "status_code": 422, "error": _problem(err)}
        except DistnetError as exc:
            results[i] = {"index": i, "status": "error", "status_code": exc.status, "error": _problem(exc)}
    found = await _cards(session, [p.card_number for _, p in prepared])
    existing = await repo.existing_orders(session, list({p.key for _, p in prepared}))
    to_insert: list[tuple[int, PreparedOrder]] = []
    for i, p in prepared:
        card_info = found.get(p.card_number)
        refusal: DistnetError | None
        if card_info is None:
            refusal = CardNotFound(f"no card {p.card_number}")
        elif p.key in existing:
            refusal = None
        else:
            refusal = sell_refusal(card_info[0], card_info[1], card_info[2], now)
        if refusal is not None:
            results[i] = {"index": i, "status": "error", "status_code": refusal.status, "error": _problem(refusal)}
        elif p.key not in existing:
            to_insert.append((i, p))
    # one AES pass for the batch's buyer references (a Fernet call each was ~10% of a batch)
    encrypted = encrypt_many(settings.secret_key, [p.buyer_ref for _, p in to_insert])
    rows = [_row(p, found[p.card_number][0], now, enc) for (_, p), enc in zip(to_insert, encrypted, strict=True)]
    inserted = await repo.insert_orders(session, rows)
    new_ids = {(s, e): (oid, created_at) for oid, s, e, created_at in inserted}
    summary: dict[str, Any] = {"commissions": 0, "amount": 0, "rows": []}
    if new_ids:
        params = {"order_ids": sorted(oid for oid, _ in new_ids.values())}
        # the commissions come back from their insert: the new orders' answers need no read-back
        summary = await accept(session, settings, repo.ORDER_IDS, params,
                               currencies={p.currency for _, p in to_insert}, aggregate=True,
                               ref_type="order_batch", ref_id=min(params["order_ids"]), rows=True)
    commissions: dict[int, list[dict[str, Any]]] = {}
    for c in summary["rows"]:
        commissions.setdefault(c["order_id"], []).append(c)
    earned: dict[int, list[dict[str, Any]]] = {}
    for lot in summary.get("points", []):
        earned.setdefault(lot["order_id"], []).append(_points_item(lot))
    # what each key holds now: the row this batch inserted (the first of its key in the batch; a
    # sorted insert keeps input order among equal keys), else what another transaction or an
    # earlier request stored, read once for those keys only
    stored: dict[tuple[str, str], tuple[int, bytes]] = {}
    new_views: dict[int, dict[str, Any]] = {}
    for (_, p), row in zip(to_insert, rows, strict=True):
        if p.key in new_ids and p.key not in stored:
            order_id, created_at = new_ids[p.key]
            stored[p.key] = (order_id, p.body_hash)
            view = _new_order_view(order_id, created_at, row, p.card_number, commissions.get(order_id, []),
                                   p.buyer_ref)
            view.pop("refunds")  # a batch's answers carry no refunds (order_views(with_refunds=False))
            view["points_earned"] = earned.get(order_id, [])
            new_views[order_id] = view
    stored.update(existing)  # stored before this batch: their keys and bodies do not change
    claimed: set[tuple[str, str]] = set()
    # keys inserted meanwhile by a concurrent request (this batch's insert skipped them)
    others = {p.key for i, p in prepared if results[i] is None and p.key not in stored}
    if others:
        stored.update(await repo.existing_orders(session, list(others)))
    ids_for_view: list[int] = []
    for i, p in prepared:
        if results[i] is not None:
            continue
        order_id, body_hash = stored[p.key]
        if p.key in new_ids and p.key not in claimed and order_id == new_ids[p.key][0]:
            claimed.add(p.key)
            results[i] = {"index": i, "status": "created", "status_code": 201, "order_id": order_id}
        elif body_hash == p.body_hash:
            results[i] = {"index": i, "status": "replayed", "status_code": 200, "order_id": order_id}
        else:
            conflict = IdempotencyConflict(f"order {p.source}/{p.external_id} exists with a different body",
                                           extra={"order_id": order_id})
            results[i] = {"index": i, "status": "error", "status_code": 409, "error": _problem(conflict)}
            continue
        if order_id not in new_views:
            ids_for_view.append(order_id)
    views = {**{v["id"]: v for v in await order_views(session, ids_for_view, with_refunds=False,
                                                               secret=settings.secret_key)}, **new_views}
    for r in results:
        assert r is not None
        if "order_id" in r:
            r["order"] = views[r.pop("order_id")]
    counts = {s: sum(1 for r in results if r and r["status"] == s) for s in ("created", "replayed", "error")}
    return {"items": results, **counts, "commission_amount": format_amount(int(summary["amount"]))}


def _field_of(message: str) -> str:
    # msgspec: "Expected `str`, got `int` - at `$.amount`"
    if "at `$." in message:
        return message.rsplit("at `$.", 1)[1].rstrip("`")
    if "missing required field" in message:
        return message.rsplit("`", 2)[-2]
    return "body"


def order_status(amount: int, refunded: int) -> str:
    if refunded == 0:
        return "completed"
    return "refunded" if refunded >= amount else "partially_refunded"


def commission_view(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": c["id"], "level": c["level"], "beneficiary_id": c["beneficiary_id"], "rate_bps": c["rate_bps"],
        "rank_used": c["rank_used"], "plan_version": c["plan_version"], "base": format_amount(c["base"]),
        "amount": format_amount(c["amount"]), "reversed": format_amount(c["reversed"]),
        "net_amount": format_amount(c["amount"] - c["reversed"]), "status": c["status"],
        "hold_until": c["hold_until"], "withheld_hold_id": c["withheld_hold_id"],
    }


async def order_views(session: AsyncSession, order_ids: list[int], *, secret: bytes, with_refunds: bool = True,
                      explain: bool = False) -> list[dict[str, Any]]:
    if not order_ids:
        return []
    orders = await repo.orders_by_id(session, order_ids)
    buyer_refs = dict(zip(orders, shown_buyer_refs(
        secret, [(o["buyer_ref_enc"], o["buyer_ref_hash"]) for o in orders.values()]), strict=True))
    commissions = await repo.commissions_of(session, order_ids)
    earned = await repo.points_of(session, order_ids)
    refunds: dict[int, list[dict[str, Any]]] = {}
    if with_refunds and order_ids:
        for r in await session.scalars(select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id)):
            refunds.setdefault(r.order_id, []).append(
                {"id": r.id, "external_id": r.external_id, "amount": format_amount(r.amount), "created_at": r.created_at}
            )
    views = []
    for oid in order_ids:
        o = orders[oid]
        view = {
            "id": o["id"], "source": o["source"], "external_id": o["external_id"],
            "status": order_status(o["amount"], o["refunded_amount"]), "card_number": o["card_number"],
            "seller_id": o["seller_id"], "amount": format_amount(o["amount"]), "currency": o["currency"],
            "category": o["category"], "channel": o["channel"], "placed_at": o["placed_at"],
            "created_at": o["created_at"], "refunded_amount": format_amount(o["refunded_amount"]),
            "remaining_amount": format_amount(o["amount"] - o["refunded_amount"]),
            "buyer_ref": buyer_refs[oid],
            "commissions": [commission_view(c) for c in commissions.get(oid, [])],
            "points_earned": [_points_item(p) for p in earned.get(oid, [])],
        }
        if with_refunds:
            view["refunds"] = refunds.get(oid, [])
        views.append(view)
    return views


async def _visible_order(session: AsyncSession, principal: Principal, order_id: int, *, lock: bool = False) -> Order:
    stmt = select(Order).where(Order.id == order_id)
    if lock:
        # racing refunds of one order serialise here
        stmt = stmt.with_for_update()
    order = await session.scalar(stmt)
    if order is None or not (principal.is_staff or principal.distributor_id == order.seller_id):
        raise OrderNotFound(f"no order {order_id}")
    return order


async def get_order(session: AsyncSession, settings: Settings, principal: Principal, order_id: int) -> dict[str, Any]:

    await _visible_order(session, principal, order_id)
    view = (await order_views(session, [order_id], secret=settings.secret_key))[0]
    # why each level has (or has no) commission: skipped levels have no row and are explained here
    view["attribution"] = await skipped_levels(session, order_id, cap=settings.business.max_levels_cap)
    return view


async def refund(session: AsyncSession, settings: Settings, principal: Principal, order_id: int,
                 data: RefundCreate) -> tuple[int, dict[str, Any]]:
    amount = parse_amount(data.amount, field="amount")
    order = await _visible_order(session, principal, order_id, lock=True)
    if not principal.has(Role.admin) and principal.distributor_id != order.seller_id:
        raise OrderNotFound(f"no order {order_id}")
    prior = await session.scalar(select(Refund).where(Refund.order_id == order.id,
                                                      Refund.external_id == data.external_id))
    if prior is not None:
        if prior.amount != amount:
            raise IdempotencyConflict(f"refund {data.external_id} exists with amount {format_amount(prior.amount)}",
                                      extra={"refund_id": prior.id})
        return 200, await _refund_view(session, settings, prior)
    remaining = order.amount - order.refunded_amount
    if remaining == 0:
        raise OrderFullyRefunded(f"order {order.id} is already fully refunded")
    if amount > remaining:
        raise RefundExceedsRemaining(
            f"refund {format_amount(amount)} exceeds the remaining {format_amount(remaining)}",
            extra={"errors": [{"field": "amount", "message": f"at most {format_amount(remaining)}"}],
                   "remaining_amount": format_amount(remaining)},
        )
    refunded_total = order.refunded_amount + amount
    order.refunded_amount = refunded_total
    new_refund = Refund(order_id=order.id, external_id=data.external_id, amount=amount)
    session.add(new_refund)
    await session.flush()
    await session.refresh(new_refund)
    debts = await reverse_commissions(session, settings, order, refunded_total, refund_id=new_refund.id)
    await points.reverse_for_refund(session, order_id=order.id, seller_id=order.seller_id, order_amount=order.amount,
                                    refunded_total=refunded_total, refund_id=new_refund.id)
    await repo.add_sales(session, repo.ORDER_IDS, {"order_ids": [order.id], "refund": amount},
                         amount_sql="-CAST(:refund AS bigint)")
    await ranks.warn_after_refund(session, seller_id=order.seller_id, refund_id=new_refund.id)
    await outbox.emit(session, "order.refunded",
                      {"order_id": order.id, "refund_id": new_refund.id, "external_id": data.external_id,
                       "amount": format_amount(amount), "refunded_total": format_amount(refunded_total)},
                      distributor_id=order.seller_id)
    for d in debts:
        await outbox.emit(session, "debt.created", d, distributor_id=d["distributor_id"])
    return 201, await _refund_view(session, settings, new_refund)


async def reverse_commissions(session: AsyncSession, settings: Settings, order: Order, refunded_total: int, *,
                              refund_id: int) -> list[dict[str, Any]]:
    """Reverse each commission of ``order`` to floor(amount * refunded_total / order amount), by
    its current status (ARCHITECTURE ledger table), as ONE balanced ledger transaction.
    Returns the debts created (reversals of available money beyond the balance, or of paid money).

    Locks: the order row is already locked by the caller. Ledger accounts are locked next, in the
    one lock order of every writer (ARCHITECTURE.md, "Lock order": distributors' accounts by id,
    then platform accounts), and only then the commission rows, so a settlement, payout or hold
    decision touching the same distributor cannot deadlock us. The platform commission_expense
    row is NOT locked here: its balance is applied at commit, as the last lock we take."""
    beneficiaries = list(await session.scalars(
        text("SELECT DISTINCT beneficiary_id FROM commission WHERE order_id = :o"), {"o": order.id}
    ))
    if not beneficiaries:
        return []
    currency = order.currency
    await ensure_platform_accounts(session, currency)
    await ensure_accounts(session, beneficiaries, currency)
    balances = {
        (r.distributor_id, r.kind): r.balance
        for r in await session.execute(
            text(
                """
                SELECT id, distributor_id, kind, balance FROM ledger_account
                 WHERE (currency = :cur AND (distributor_id = ANY(CAST(:ids AS bigint[]))
                        OR (distributor_id IS NULL AND kind = 'forfeited_income')))
                    -- the seller's points, reversed in the same transaction (points.reverse_for_refund)
                    OR (currency = 'PTS' AND distributor_id = :seller AND kind IN ('points', 'points_owed'))
                 ORDER BY distributor_id IS NULL, id FOR NO KEY UPDATE
                """
            ),
            {"cur": currency, "ids": beneficiaries, "seller": order.seller_id},
        )
    }
    rows = (await session.execute(
        text(
            """
            SELECT id, beneficiary_id, amount, reversed, status FROM commission
             WHERE order_id = :o ORDER BY level FOR UPDATE
            """
        ),
        {"o": order.id},
    )).all()
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
                debts.append({"distributor_id": c.beneficiary_id, "amount": format_amount(-amount),
                              "commission_id": c.id, "order_id": order.id, "refund_id": refund_id,
                              "reason": "refund_clawback"})
        updates.append((c.id, r))
    if not updates:
        return []
    await post(session, kind="commission.reversed", postings=postings, ref_type="refund", ref_id=refund_id,
               memo=f"refund of order {order.id}", currency=currency)
    await session.execute(
        text(
            """
            UPDATE commission c SET reversed = c.reversed + u.r
              FROM unnest(CAST(:ids AS bigint[]), CAST(:rs AS bigint[])) AS u(id, r) WHERE c.id = u.id
            """
        ),
        {"ids": [u[0] for u in updates], "rs": [u[1] for u in updates]},
    )
    return debts


async def _refund_view(session: AsyncSession, settings: Settings, r: Refund) -> dict[str, Any]:
    view = (await order_views(session, [r.order_id], secret=settings.secret_key))[0]
    return {"id": r.id, "order_id": r.order_id, "external_id": r.external_id, "amount": format_amount(r.amount),
            "created_at": r.created_at, "order": view}


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


async def seller_orders(session: AsyncSession, settings: Settings, principal: Principal, distributor_id: int, *,
                        placed_from: datetime | None = None, placed_to: datetime | None = None,
                        status: str | None = None, cursor: str | None = None,
                        limit: int | None = None) -> SellerOrderPage:
    """The distributor's own sales, newest first: each order with its commissions per level (the
    upline by code and masked name only), its refunds and its status. Owner or staff; another
    distributor gets 404."""
    seller = await visible_distributor(session, principal, distributor_id)
    limit = check_limit(limit)
    if placed_from is not None and placed_to is not None and placed_to <= placed_from:
        raise ValidationFailed("to must be after from", field="to")
    rows = await repo.seller_orders_page(
        session, seller.id, placed_from=placed_from, placed_to=placed_to, status=status,
        after=_order_cursor(cursor), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = await seller_order_views(session, settings, seller.id, rows)
    next_cursor = encode_cursor(rows[-1].placed_at.isoformat(), rows[-1].id) if more else None
    return SellerOrderPage(items=items, next_cursor=next_cursor)


async def seller_order_views(session: AsyncSession, settings: Settings, viewer_id: int,
                             rows: list[Any]) -> list[SellerOrder]:
    """Orders (rows of ``repo.seller_orders_page``) as ``viewer_id`` may see them."""
    ids = [r.id for r in rows]
    lines: dict[int, list[SellerOrderCommission]] = {}
    for c in await repo.commission_lines(session, ids):
        own = c.beneficiary_id == viewer_id
        lines.setdefault(c.order_id, []).append(SellerOrderCommission(
            level=c.level, beneficiary=PersonRef(code=c.code, name=mask_name(c.name, erased=c.erased_at is not None)),
            own=own, rate_bps=c.rate_bps, base=format_amount(c.base), amount=format_amount(c.amount),
            reversed=format_amount(c.reversed), net_amount=format_amount(c.amount - c.reversed),
            status=c.status if own else None))
    refunds: dict[int, list[SellerOrderRefund]] = {}
    for r in await repo.refunds_of(session, ids):
        refunds.setdefault(r.order_id, []).append(SellerOrderRefund(
            id=r.id, external_id=r.external_id, amount=format_amount(r.amount), created_at=r.created_at))
    buyer_refs = shown_buyer_refs(settings.secret_key, [(r.buyer_ref_enc, r.buyer_ref_hash) for r in rows])
    return [
        SellerOrder(
            id=r.id, source=r.source, external_id=r.external_id, status=order_status(r.amount, r.refunded_amount),
            card_number=r.card_number, amount=format_amount(r.amount), currency=r.currency, category=r.category,
            channel=r.channel, placed_at=r.placed_at, created_at=r.created_at,
            refunded_amount=format_amount(r.refunded_amount),
            remaining_amount=format_amount(r.amount - r.refunded_amount), buyer_ref=buyer_ref,
            commissions=lines.get(r.id, []), refunds=refunds.get(r.id, []))
        for r, buyer_ref in zip(rows, buyer_refs, strict=True)
    ]
