"""SQL of the console's own state (sessions, sign-in attempts). Business reads and writes go
through the domains' services: the console writes nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards.service import hold_is_active
from distnet.db import rowcount
from distnet.models import (
    ApiKey,
    Card,
    ConsoleSession,
    ConsoleSignInAttempt,
    Distributor,
    Hold,
    Order,
    RiskRuleVersion,
    RiskScan,
    Staff,
)


async def failures_since(session: AsyncSession, client: str, since: datetime) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(ConsoleSignInAttempt)
            .where(ConsoleSignInAttempt.client == client, ConsoleSignInAttempt.at >= since)
        )
        or 0
    )


async def record_failure(session: AsyncSession, client: str, step: str) -> None:
    await session.execute(insert(ConsoleSignInAttempt).values(client=client[:64], step=step))


async def forget_failures_before(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(ConsoleSignInAttempt).where(ConsoleSignInAttempt.at < before))


async def session_with_key(
    session: AsyncSession, token_hash: bytes
) -> tuple[ConsoleSession, ApiKey, Staff] | None:
    row = (
        await session.execute(
            select(ConsoleSession, ApiKey, Staff)
            .join(ApiKey, ApiKey.id == ConsoleSession.key_id)
            .join(Staff, Staff.id == ConsoleSession.staff_id)
            .where(ConsoleSession.token_hash == token_hash)
        )
    ).first()
    return (row[0], row[1], row[2]) if row else None


async def delete_session(session: AsyncSession, token_hash: bytes) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))


async def touch_session(session: AsyncSession, token_hash: bytes, at: datetime) -> None:
    await session.execute(
        update(ConsoleSession).where(ConsoleSession.token_hash == token_hash).values(last_seen_at=at)
    )


async def delete_idle_sessions(session: AsyncSession, idle: timedelta, now: datetime) -> int:
    result = await session.execute(delete(ConsoleSession).where(ConsoleSession.last_seen_at < now - idle))
    return rowcount(result) or 0


# --------------------------------------------------------------------------- read-only lookups for pages
# (names and codes instead of ids; searches the API does not offer)


@dataclass(frozen=True, slots=True)
class Who:
    id: int
    code: str
    name: str
    card: str | None


async def who_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Who]:
    wanted = sorted({int(i) for i in ids if i is not None})
    if not wanted:
        return {}
    live_card = (
        select(Card.number)
        .where(Card.distributor_id == Distributor.id, Card.cancelled_at.is_(None))
        .order_by(Card.id.desc())
        .limit(1)
        .correlate(Distributor)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Distributor.id, Distributor.code, Distributor.name, live_card).where(
            Distributor.id.in_(wanted)
        )
    )
    return {r[0]: Who(r[0], r[1], r[2], r[3]) for r in rows}


@dataclass(frozen=True, slots=True)
class HoldRow:
    id: int
    card_number: str
    distributor: Who
    reason: str
    source: str
    rule: str | None
    started_at: datetime
    ends_at: datetime | None
    lifted_at: datetime | None
    outcome: str | None
    placed_by: str | None
    note: str | None
    risk_case_id: int | None
    active: bool


async def search_holds(
    session: AsyncSession,
    *,
    card: str | None = None,
    distributor: str | None = None,
    reason: str | None = None,
    active: bool | None = None,
    hold_id: int | None = None,
    window_id: int | None = None,
    limit: int = 200,
) -> list[HoldRow]:
    stmt = (
        select(Hold, Card.number, Distributor.code, Distributor.name)
        .join(Card, Card.id == Hold.card_id)
        .join(Distributor, Distributor.id == Hold.distributor_id)
    )
    if hold_id is not None:
        stmt = stmt.where(Hold.id == hold_id)
    if window_id is not None:
        stmt = stmt.where(Hold.maintenance_window_id == window_id)
    if card:
        stmt = stmt.where(Card.number == card.replace(" ", ""))
    if distributor:
        stmt = stmt.where(
            or_(Distributor.code == distributor.strip().upper(), Distributor.name == distributor.strip())
        )
    if reason:
        stmt = stmt.where(Hold.reason == reason)
    if active is not None:
        stmt = stmt.where(hold_is_active() if active else ~hold_is_active())
    rows = await session.execute(stmt.order_by(Hold.id.desc()).limit(limit))
    return [_hold_row(h, number, code, name) for h, number, code, name in rows]


def _hold_row(h: Hold, number: str, code: str, name: str) -> HoldRow:
    at = datetime.now(UTC)
    active = h.lifted_at is None and h.started_at <= at and (h.ends_at is None or h.ends_at > at)
    return HoldRow(
        h.id,
        number,
        Who(h.distributor_id, code, name, number),
        h.reason,
        h.source_type,
        h.rule_name,
        h.started_at,
        h.ends_at,
        h.lifted_at,
        h.outcome,
        h.placed_by,
        h.note,
        h.risk_case_id,
        active,
    )


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: int
    placed_at: datetime
    amount: int
    refunded: int
    currency: str
    external_id: str
    source: str
    card: str | None
    seller: Who | None
    buyer_reference: str | None


async def orders_of_card(session: AsyncSession, card_number: str, *, limit: int = 20) -> list[OrderRow]:
    rows = await session.execute(
        select(Order, Card.number)
        .join(Card, Card.id == Order.card_id)
        .where(Card.number == card_number)
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(limit)
    )
    return await _order_rows(session, rows.all())


async def orders_by_id(
    session: AsyncSession, ids: Iterable[int], *, limit: int = 200
) -> tuple[list[OrderRow], int]:
    wanted = sorted({int(i) for i in ids})
    rows = await session.execute(
        select(Order, Card.number)
        .outerjoin(Card, Card.id == Order.card_id)
        .where(Order.id.in_(wanted[:limit]))
        .order_by(Order.placed_at, Order.id)
    )
    return await _order_rows(session, rows.all()), len(wanted)


async def _order_rows(session: AsyncSession, rows: Sequence[Any]) -> list[OrderRow]:
    who = await who_by_id(session, [o.seller_id for o, _ in rows])
    return [
        OrderRow(
            o.id,
            o.placed_at,
            o.amount,
            o.refunded_amount,
            o.currency,
            o.external_id,
            o.source,
            number,
            who.get(o.seller_id),
            getattr(o, "buyer_ref", None),
        )
        for o, number in rows
    ]


@dataclass(frozen=True, slots=True)
class RuleVersionRow:
    name: str
    version: int
    mode: str
    params: dict[str, Any]
    created_at: datetime
    created_by: str | None


async def rule_history(session: AsyncSession, *, limit: int = 100) -> list[RuleVersionRow]:
    rows = await session.scalars(
        select(RiskRuleVersion).order_by(RiskRuleVersion.created_at.desc(), RiskRuleVersion.name).limit(limit)
    )
    return [RuleVersionRow(r.name, r.version, r.mode, r.params, r.created_at, r.created_by) for r in rows]


async def recent_scans(session: AsyncSession, *, limit: int = 20) -> list[RiskScan]:
    return list(await session.scalars(select(RiskScan).order_by(RiskScan.id.desc()).limit(limit)))
