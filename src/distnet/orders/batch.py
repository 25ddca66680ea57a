"""Orders in batches (POST /orders/batch): up to 1,000 orders, each answered on its own, the
accepted ones attributed together."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards.errors import CardNotFound
from distnet.kit import pg
from distnet.kit.auth import Principal
from distnet.kit.crypto import encrypt_many
from distnet.kit.errors import DistnetError, IdempotencyConflict, ValidationFailed
from distnet.kit.money import format_amount
from distnet.orders import repository as repo
from distnet.orders.ingest import PreparedOrder, accept, order_row, prepare, sell_refusal
from distnet.orders.schemas import (
    BatchAnswer,
    BatchProblem,
    BatchResult,
    OrderCreate,
    OrderView,
    PointsEarned,
)
from distnet.orders.views import new_order_view, order_views, points_item
from distnet.settings import Settings


def _refused(i: int, exc: DistnetError) -> BatchResult:
    """A refused order's result: its problem without ``type`` (``code`` names it); the problem's
    members that BatchProblem does not name are left out."""
    body = exc.to_problem()
    body.pop("type", None)
    return BatchResult(
        index=i, status="error", status_code=exc.status, error=msgspec.convert(body, BatchProblem)
    )


async def create_batch(
    session: AsyncSession, settings: Settings, principal: Principal, raw_orders: list[Any]
) -> BatchAnswer:
    """Up to 1,000 orders: each is validated on its own and answered in its result, in input
    order: ``created`` (201), ``replayed`` (200) or ``error`` with its problem. Accepted orders
    are attributed in one statement; their postings form one ledger transaction, aggregated per
    (beneficiary, account) (commission_id null on those postings)."""
    now = datetime.now(UTC)
    results: list[BatchResult | None] = [None] * len(raw_orders)
    prepared: list[tuple[int, PreparedOrder]] = []
    for i, raw in enumerate(raw_orders):
        try:
            data = msgspec.convert(raw, OrderCreate, strict=True)
            prepared.append((i, prepare(data, settings, now)))
        except msgspec.ValidationError as exc:
            results[i] = _refused(i, ValidationFailed(str(exc), field=_field_of(str(exc))))
        except DistnetError as exc:
            results[i] = _refused(i, exc)
    found = await repo.cards_for_sale(session, [p.card_number for _, p in prepared])
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
            results[i] = _refused(i, refusal)
        elif p.key not in existing:
            to_insert.append((i, p))
    # one AES pass for the batch's buyer references (a Fernet call each was ~10% of a batch)
    encrypted = encrypt_many(settings.secret_key, [p.buyer_ref for _, p in to_insert])
    rows = [
        order_row(p, found[p.card_number][0], now, enc)
        for (_, p), enc in zip(to_insert, encrypted, strict=True)
    ]
    inserted = await repo.insert_orders(session, rows)
    new_ids = {(s, e): (oid, created_at) for oid, s, e, created_at in inserted}
    summary: dict[str, Any] = {"commissions": 0, "amount": 0, "rows": []}
    if new_ids:
        order_ids = sorted(oid for oid, _ in new_ids.values())
        params = {"order_ids": pg.int_array(order_ids)}
        # the commissions come back from their insert: the new orders' answers need no read-back
        summary = await accept(
            session,
            settings,
            repo.ORDER_IDS,
            params,
            currencies={p.currency for _, p in to_insert},
            aggregate=True,
            ref_type="order_batch",
            ref_id=order_ids[0],
            rows=True,
        )
    commissions: dict[int, list[Any]] = {}
    for c in summary["rows"]:
        commissions.setdefault(c.order_id, []).append(c)
    earned: dict[int, list[PointsEarned]] = {}
    for lot in summary.get("points", []):
        earned.setdefault(lot["order_id"], []).append(points_item(lot))
    # what each key holds now: the row this batch inserted (the first of its key in the batch; a
    # sorted insert keeps input order among equal keys), else what another transaction or an
    # earlier request stored, read once for those keys only
    stored: dict[tuple[str, str], tuple[int, bytes]] = {}
    new_views: dict[int, OrderView] = {}
    for (_, p), row in zip(to_insert, rows, strict=True):
        if p.key in new_ids and p.key not in stored:
            order_id, created_at = new_ids[p.key]
            stored[p.key] = (order_id, p.body_hash)
            # a batch's answers carry no refunds (order_views(with_refunds=False))
            view = new_order_view(
                order_id,
                created_at,
                row,
                p.card_number,
                commissions.get(order_id, []),
                p.buyer_ref,
                with_refunds=False,
            )
            view.points_earned = earned.get(order_id, [])
            new_views[order_id] = view
    stored.update(existing)  # stored before this batch: their keys and bodies do not change
    claimed: set[tuple[str, str]] = set()
    # keys inserted meanwhile by a concurrent request (this batch's insert skipped them)
    others = {p.key for i, p in prepared if results[i] is None and p.key not in stored}
    if others:
        stored.update(await repo.existing_orders(session, list(others)))
    ids_for_view: list[int] = []
    answered: list[tuple[int, str, int, int]] = []  # (index, status, status_code, order_id)
    for i, p in prepared:
        if results[i] is not None:
            continue
        order_id, body_hash = stored[p.key]
        if p.key in new_ids and p.key not in claimed and order_id == new_ids[p.key][0]:
            claimed.add(p.key)
            answered.append((i, "created", 201, order_id))
        elif body_hash == p.body_hash:
            answered.append((i, "replayed", 200, order_id))
        else:
            conflict = IdempotencyConflict(
                f"order {p.source}/{p.external_id} exists with a different body", extra={"order_id": order_id}
            )
            results[i] = _refused(i, conflict)
            continue
        if order_id not in new_views:
            ids_for_view.append(order_id)
    views = {
        **{
            v.id: v
            for v in await order_views(session, ids_for_view, with_refunds=False, secret=settings.secret_key)
        },
        **new_views,
    }
    for i, status, status_code, order_id in answered:
        results[i] = BatchResult(index=i, status=status, status_code=status_code, order=views[order_id])
    items = [r for r in results if r is not None]
    assert len(items) == len(results)
    return BatchAnswer(
        items=items,
        created=sum(1 for r in items if r.status == "created"),
        replayed=sum(1 for r in items if r.status == "replayed"),
        error=sum(1 for r in items if r.status == "error"),
        commission_amount=format_amount(int(summary["amount"])),
    )


def _field_of(message: str) -> str:
    # msgspec: "Expected `str`, got `int` - at `$.amount`"
    if "at `$." in message:
        return message.rsplit("at `$.", 1)[1].rstrip("`")
    if "missing required field" in message:
        return message.rsplit("`", 2)[-2]
    return "body"
