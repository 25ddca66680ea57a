"""Distribution cards. A card's status is computed on read from its lifecycle timestamps and the
active holds of its owner: it is never an overwritable field."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards import repository as repo
from distnet.cards.errors import CardCancelled, CardNotFound
from distnet.cards.schemas import CardView, HoldSummary, ReplacementCard
from distnet.kit import audit, outbox
from distnet.kit.auth import Principal, ensure_self_or_staff
from distnet.models import Card, Hold
from distnet.network.codes import new_card_number


class CardStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    frozen = "frozen"
    cancelled = "cancelled"


def hold_is_active(now: Any = None) -> ColumnElement[bool]:
    """The one definition of an active hold. Maintenance holds are active by their time window,
    so a card is restored at the window's end even if no worker runs at that second."""
    at = now if now is not None else func.now()
    return and_(
        Hold.lifted_at.is_(None),
        Hold.started_at <= at,
        or_(Hold.ends_at.is_(None), Hold.ends_at > at),
    )


async def issue_card(session: AsyncSession, *, distributor_id: int) -> Card:
    for attempt in range(5):
        try:
            async with session.begin_nested():
                card = Card(number=new_card_number(), distributor_id=distributor_id)
                session.add(card)
                await session.flush()
            return card
        except IntegrityError:  # number collision (10^13 numbers): retry
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


async def live_card(session: AsyncSession, *, distributor_id: int) -> Card | None:
    return await session.scalar(
        select(Card).where(Card.distributor_id == distributor_id, Card.cancelled_at.is_(None))
    )


async def current_card(session: AsyncSession, *, distributor_id: int) -> Card | None:
    """The live card, or for a closed account the last one (shown as cancelled)."""
    return await session.scalar(
        select(Card)
        .where(Card.distributor_id == distributor_id)
        .order_by(Card.cancelled_at.is_not(None), Card.id.desc())
        .limit(1)
    )


async def active_holds(session: AsyncSession, *, distributor_id: int) -> list[Hold]:
    rows = await session.scalars(
        select(Hold)
        .where(Hold.distributor_id == distributor_id, hold_is_active())
        .order_by(Hold.started_at, Hold.id)
    )
    return list(rows)


def status_of(card: Any, holds: Sequence[Any]) -> CardStatus:
    """``card``: a Card or a row with its timestamps; ``holds``: its owner's active holds."""
    if card.cancelled_at is not None:
        return CardStatus.cancelled
    if card.frozen_at is not None:
        return CardStatus.frozen
    if holds:
        return CardStatus.suspended
    return CardStatus.active


def hold_summary(h: Hold) -> HoldSummary:
    return HoldSummary(
        id=h.id,
        reason=h.reason,
        since=h.started_at,
        ends_at=h.ends_at,
        appealable=h.appealable,
        rule=h.rule_name,
        note=h.note,
    )


async def card_view(session: AsyncSession, *, card: Card) -> CardView:
    holds = [] if card.cancelled_at else await active_holds(session, distributor_id=card.distributor_id)
    return CardView(
        number=card.number,
        status=status_of(card, holds).value,
        distributor_id=card.distributor_id,
        issued_at=card.issued_at,
        frozen_at=card.frozen_at,
        cancelled_at=card.cancelled_at,
        cancel_reason=card.cancel_reason,
        holds=[hold_summary(h) for h in holds],
    )


async def get_card(session: AsyncSession, *, number: str, lock: bool = False) -> Card:
    stmt = select(Card).where(Card.number == number)
    if lock:
        stmt = stmt.with_for_update()
    card = await session.scalar(stmt)
    if card is None:
        raise CardNotFound(f"no card {number}")
    return card


async def visible_card(
    session: AsyncSession, principal: Principal, number: str, *staff: str, lock: bool = False
) -> Card:
    card = await get_card(session, number=number, lock=lock)
    try:
        ensure_self_or_staff(principal, card.distributor_id, *staff)
    except Exception as exc:
        # never confirm that someone else's card exists
        raise CardNotFound(f"no card {number}") from exc
    return card


async def report_loss(session: AsyncSession, *, principal: Principal, number: str) -> CardView:
    card = await visible_card(session, principal, number, "admin", lock=True)
    if card.cancelled_at is not None:
        raise CardCancelled("a cancelled card cannot be reported lost")
    if card.frozen_at is None:
        card.frozen_at = datetime.now(UTC)
        await session.flush()
        await audit.record(
            session,
            principal,
            "card.loss_reported",
            "card",
            card.number,
            before={"frozen_at": None},
            after={"frozen_at": card.frozen_at.isoformat()},
        )
        await outbox.emit(session, "card.frozen", {"number": card.number}, distributor_id=card.distributor_id)
    return await card_view(session, card=card)


async def cancel_card(
    session: AsyncSession, *, principal: Principal, card: Card, reason: str, replaced_by: Card | None = None
) -> None:
    await session.execute(
        update(Card)
        .where(Card.id == card.id)
        .values(
            cancelled_at=func.now(),
            cancel_reason=reason,
            replaced_by_id=replaced_by.id if replaced_by else None,
        )
    )
    await audit.record(
        session,
        principal,
        "card.cancelled",
        "card",
        card.number,
        after={"reason": reason, "replaced_by": replaced_by.number if replaced_by else None},
    )


async def replace_card(session: AsyncSession, *, principal: Principal, number: str) -> ReplacementCard:
    old = await visible_card(session, principal, number, "admin", lock=True)
    if old.cancelled_at is not None:
        raise CardCancelled("this card is already cancelled; use the distributor's current card")
    # cancel first: the partial unique index allows one live card per distributor
    await session.execute(
        update(Card).where(Card.id == old.id).values(cancelled_at=func.now(), cancel_reason="replaced")
    )
    new = await issue_card(session, distributor_id=old.distributor_id)
    await session.execute(update(Card).where(Card.id == old.id).values(replaced_by_id=new.id))
    # holds follow the distributor onto the new card (the suspension is about the person)
    await session.execute(
        update(Hold).where(Hold.card_id == old.id, Hold.lifted_at.is_(None)).values(card_id=new.id)
    )
    await audit.record(
        session,
        principal,
        "card.replaced",
        "card",
        old.number,
        before={"number": old.number},
        after={"number": new.number},
    )
    await outbox.emit(
        session, "card.replaced", {"old": old.number, "new": new.number}, distributor_id=old.distributor_id
    )
    new_number, old_number = new.number, old.number
    session.expire_all()
    view = await card_view(session, card=await get_card(session, number=new_number))
    return ReplacementCard(**msgspec.structs.asdict(view), replaces=old_number)


def card_view_of_row(row: Any) -> CardView:
    """The view of a card read with its holds in one statement (cards.repository: ``CARD_COLUMNS``
    and ``HOLD_ARRAYS``); the same as ``card_view`` of the ORM card."""
    holds = [HoldSummary(**h) for h in repo.hold_rows(row)]
    return CardView(
        number=row.number,
        status=status_of(row, holds).value,
        distributor_id=row.card_owner,
        issued_at=row.issued_at,
        frozen_at=row.frozen_at,
        cancelled_at=row.cancelled_at,
        cancel_reason=row.cancel_reason,
        holds=holds,
    )


async def card_for_view(session: AsyncSession, *, principal: Principal, number: str) -> CardView:
    row = await repo.card_with_holds(session, number)
    if row is None:
        raise CardNotFound(f"no card {number}")
    try:
        ensure_self_or_staff(principal, row.card_owner)
    except Exception as exc:
        # never confirm that someone else's card exists
        raise CardNotFound(f"no card {number}") from exc
    return card_view_of_row(row)
