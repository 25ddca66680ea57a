"""Holds (停卡): placing, lifting, and what happens to the money a violation hold withholds.

A hold is its own row; a card is suspended while any of its owner's holds is active
(``cards.service.hold_is_active``), so lifting one hold never touches another. Money follows the
ledger table of ARCHITECTURE.md:

* cleared → the hold's withheld commissions go back to ``pending`` (D.withheld → D.pending), unless
  the beneficiary is still under another violation hold, which then takes them over (stay withheld);
* confirmed → they are forfeited (D.withheld → forfeited_income) once the appeal path is exhausted:
  at ``forfeit_at`` with no open appeal (:func:`forfeit_due`), or at once on a final rejection.

``hold.money_settled_at`` is stamped once, by whichever way the money went first; a hold whose money
was forfeited cannot be cleared afterwards (never both).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards.service import hold_is_active, visible_card
from distnet.kit import audit, outbox
from distnet.kit.auth import SYSTEM, Principal, ensure_self_or_staff
from distnet.kit.errors import Conflict, ValidationFailed
from distnet.kit.money import format_amount
from distnet.ledger.service import Posting, post
from distnet.models import Appeal, Card, Hold
from distnet.models.network import VIOLATION_REASONS
from distnet.risk import repository as repo
from distnet.risk.errors import HoldAlreadyLifted, HoldNotFound
from distnet.risk.schemas import (
    AppealCount,
    HoldSource,
    HoldView,
    OrderBehindHold,
    OrdersBehindHold,
    WithheldMoney,
)
from distnet.settings import Settings, get_settings

MANUAL_REASONS = ("manual", "fake_promotion", "order_brushing", "unpaid_balance")
OPEN_APPEAL_STATUSES = ("submitted", "in_review", "info_requested", "escalated")
HOW_TO_APPEAL = "POST /api/v1/appeals {hold_id, statement, evidence} within the appeal window"


class MoneyAlreadyForfeited(Conflict):
    code = "hold-money-forfeited"
    title = "The withheld money of this hold was already forfeited"


class MoneyAlreadyReleased(Conflict):
    code = "hold-money-released"
    title = "The withheld money of this hold was already released"


def refuse_if_settled(hold: Hold, outcome: str) -> None:
    """Once a hold's withheld money was released (or handed over) or forfeited, its recorded
    outcome is final: an action that would make it ``outcome`` instead is refused with 409 naming
    the outcome it has. The same outcome again is not a change (the caller moves nothing)."""
    if hold.money_settled_at is None or hold.outcome == outcome:
        return
    at = hold.money_settled_at.isoformat()
    extra = {"outcome": hold.outcome, "money_settled_at": at}
    if hold.outcome == "confirmed":
        raise MoneyAlreadyForfeited(
            f"hold {hold.id} is confirmed and its withheld money was forfeited at {at}; "
            f"it cannot become {outcome}",
            extra=extra,
        )
    raise MoneyAlreadyReleased(
        f"hold {hold.id} is {hold.outcome} and its withheld money was released at {at}; "
        f"it cannot become {outcome}",
        extra=extra,
    )


def now_utc() -> datetime:
    return datetime.now(UTC)


async def place_hold(
    session: AsyncSession,
    actor: Principal,
    *,
    distributor_id: int,
    reason: str,
    source_type: str,
    subject_key: str,
    rule_name: str | None = None,
    rule_version: int | None = None,
    risk_case_id: int | None = None,
    window_id: int | None = None,
    evidence: dict[str, Any] | None = None,
    note: str | None = None,
) -> int | None:
    """Place one hold on the distributor's live card. Returns its id, or None when an active hold for
    the same (distributor, reason, rule, subject) exists already or there is no live card."""
    card = await session.scalar(
        select(Card).where(Card.distributor_id == distributor_id, Card.cancelled_at.is_(None))
    )
    if card is None:
        return None
    # ON CONFLICT on the partial unique index uq_hold_active_subject: a repeated detector run
    # (or two concurrent ones) never makes a duplicate hold
    hold_id = await session.scalar(
        repo.INSERT_HOLD,
        {
            "d": distributor_id,
            "card": card.id,
            "reason": reason,
            "source": source_type,
            "rule": rule_name,
            "version": rule_version,
            "case": risk_case_id,
            "window": window_id,
            "subject": subject_key,
            "by": actor.actor,
            "key": actor.key_id,
            "note": note,
            "evidence": _json(evidence or {}),
            "appealable": reason != "maintenance",
        },
    )
    if hold_id is None:
        return None
    after = {
        "reason": reason,
        "source": source_type,
        "rule": rule_name,
        "rule_version": rule_version,
        "risk_case_id": risk_case_id,
        "card": card.number,
        "note": note,
    }
    await audit.record(session, actor, "hold.placed", "hold", hold_id, after=after)
    await outbox.emit(
        session,
        "hold.placed",
        {
            "hold_id": hold_id,
            "card_number": card.number,
            "reason": reason,
            "rule": rule_name,
            "appealable": reason != "maintenance",
            "how_to_appeal": HOW_TO_APPEAL if reason != "maintenance" else None,
        },
        distributor_id=distributor_id,
    )
    return hold_id


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


async def place_manual_hold(
    session: AsyncSession, principal: Principal, card_number: str, *, reason: str, note: str | None
) -> HoldView:
    if reason not in MANUAL_REASONS:
        raise ValidationFailed(
            f"reason must be one of {', '.join(MANUAL_REASONS)} "
            "(maintenance holds come from maintenance windows)",
            field="reason",
        )
    card = await visible_card(session, principal, number=card_number, lock=True)
    if card.cancelled_at is not None:
        raise Conflict("a cancelled card cannot be suspended")
    hold_id = await place_hold(
        session,
        principal,
        distributor_id=card.distributor_id,
        reason=reason,
        source_type="actor",
        subject_key=f"manual:{uuid.uuid4()}",
        evidence={"note": note} if note else {},
        note=note,
    )
    assert hold_id is not None  # the subject key is unique
    return await hold_view(session, await get_hold(session, hold_id), full=True)


async def get_hold(session: AsyncSession, hold_id: int, *, lock: bool = False) -> Hold:
    stmt = select(Hold).where(Hold.id == hold_id)
    if lock:
        # the newest committed version: a racing lift, decision or forfeit that committed while we
        # waited for the lock is what the checks must see
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    hold = await session.scalar(stmt)
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id}")
    return hold


async def visible_hold(session: AsyncSession, principal: Principal, hold_id: int) -> Hold:
    hold = await get_hold(session, hold_id)
    try:
        ensure_self_or_staff(principal, hold.distributor_id)
    except Exception as exc:  # never confirm that someone else's hold exists
        raise HoldNotFound(f"no hold {hold_id}") from exc
    return hold


def hold_status(hold: Hold, at: datetime | None = None) -> str:
    at = at or now_utc()
    if hold.lifted_at is not None or (hold.ends_at is not None and hold.ends_at <= at):
        return "lifted"
    if hold.started_at > at:
        return "scheduled"
    return "active"


def evidence_summary(evidence: dict[str, Any]) -> dict[str, Any]:
    """What the owner sees: the kinds of evidence and how much of each, never other people's ids."""
    out: dict[str, Any] = {}
    for key, value in (evidence or {}).items():
        if isinstance(value, list):
            out[key] = {"count": len(value)}
        elif isinstance(value, dict):
            out[key] = {
                k: len(v) if isinstance(v, list) else v
                for k, v in value.items()
                if isinstance(v, (list, int, float, str))
            }
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out[key] = value
    return out


async def hold_view(
    session: AsyncSession, hold: Hold, *, full: bool, settings: Settings | None = None
) -> HoldView:
    """The hold as its owner (``full=False``) or staff see it. With ``settings``, also what it rests on
    (risk.evidence): the owner's own orders the rule counted, the rule and its parameters in words,
    and whether an appeal is still possible and why not."""
    card_number = await session.scalar(select(Card.number).where(Card.id == hold.card_id))
    withheld = (await session.execute(repo.WITHHELD_BY_HOLD, {"h": hold.id})).one()

    view = HoldView(
        id=hold.id,
        card_number=card_number,
        distributor_id=hold.distributor_id,
        reason=hold.reason,
        status=hold_status(hold),
        outcome=hold.outcome,
        started_at=hold.started_at,
        ends_at=hold.ends_at,
        lifted_at=hold.lifted_at,
        evidence=hold.evidence if full else evidence_summary(hold.evidence),
        appealable=hold.appealable,
        source=HoldSource(
            type=hold.source_type,
            rule=hold.rule_name,
            rule_version=hold.rule_version,
            risk_case_id=hold.risk_case_id,
            maintenance_window_id=hold.maintenance_window_id,
            # a hold with no recorded placer (none is written so) omits it, as the schema allows
            placed_by=hold.placed_by if full and hold.placed_by is not None else msgspec.UNSET,
        ),
        note=hold.note,
        lift_note=hold.lift_note if full else None,
        forfeit_at=hold.forfeit_at,
        money_settled_at=hold.money_settled_at,
        withheld=WithheldMoney(count=int(withheld.n), amount=format_amount(int(withheld.w))),
        how_to_appeal=HOW_TO_APPEAL if hold.appealable and hold.outcome != "cleared" else None,
    )
    if settings is not None:
        await _add_grounds(session, view, hold, settings)
    return view


async def _add_grounds(session: AsyncSession, view: HoldView, hold: Hold, settings: Settings) -> None:
    from distnet.risk import evidence as ev

    behind = await ev.orders_behind(
        session,
        settings.secret_key,
        list((hold.evidence or {}).get("order_ids", [])),
        seller_id=hold.distributor_id,
    )
    params = await ev.rule_params(session, hold.rule_name, hold.rule_version)
    can = await ev.appealability(session, hold, max_submissions=settings.business.appeal_max_submissions)
    view.explanation = ev.explain(hold.rule_name, hold.reason, params, hold.evidence, behind, hold.note)
    view.rule_params = params
    view.orders = OrdersBehindHold(
        total=behind.total,
        buyers=behind.buyers,
        items=[
            OrderBehindHold(
                id=o.id,
                external_id=o.external_id,
                placed_at=o.placed_at,
                amount=o.amount,
                currency=o.currency,
                refunded_amount=o.refunded_amount,
                buyer_ref=o.buyer_ref,
                buyer_key=o.buyer_key,
            )
            for o in behind.orders
        ],
    )
    view.appealable = can.appealable
    view.appeal_unavailable_reason = can.reason
    view.appeals = AppealCount(submitted=can.submissions, max=can.max_submissions)
    view.how_to_appeal = HOW_TO_APPEAL if can.appealable else None


async def hold_for_view(
    session: AsyncSession, principal: Principal, hold_id: int, settings: Settings | None = None
) -> HoldView:
    hold = await visible_hold(session, principal, hold_id)
    return await hold_view(session, hold, full=principal.is_staff, settings=settings)


# --------------------------------------------------------------------------- lifting


async def lift_hold(
    session: AsyncSession,
    principal: Principal,
    hold_id: int,
    *,
    outcome: str,
    note: str | None,
    forfeit_after_days: int,
) -> HoldView:
    """Staff lift (POST /holds/{id}/lift). ``cleared`` releases this hold's withheld money;
    ``confirmed`` schedules its forfeiture once the appeal path is exhausted."""
    if outcome not in ("cleared", "confirmed"):
        raise ValidationFailed("outcome must be cleared or confirmed", field="outcome")
    hold = await get_hold(session, hold_id, lock=True)
    if hold.lifted_at is not None:
        raise HoldAlreadyLifted(
            f"hold {hold_id} was lifted at {hold.lifted_at.isoformat()} (outcome {hold.outcome})",
            extra={"outcome": hold.outcome},
        )
    if hold.reason == "maintenance" and outcome != "cleared":
        raise ValidationFailed("a maintenance hold can only be lifted as cleared", field="outcome")
    if outcome == "cleared":
        await clear_hold(session, principal, hold, note=note)
    else:
        await confirm_hold(
            session,
            principal,
            hold,
            note=note,
            lift=True,
            final=await appeals_exhausted(session, hold),
            forfeit_after_days=forfeit_after_days,
        )
    return await hold_view(session, hold, full=True)


async def _stamp_lifted(
    session: AsyncSession,
    actor: Principal,
    hold: Hold,
    outcome: str,
    note: str | None,
    at: datetime | None = None,
) -> None:
    before = {"status": hold_status(hold), "outcome": hold.outcome}
    hold.lifted_at = at or now_utc()
    hold.lifted_by = actor.actor
    hold.lift_note = note
    hold.outcome = outcome
    await session.flush()
    await audit.record(
        session,
        actor,
        "hold.lifted",
        "hold",
        hold.id,
        before=before,
        after={"status": "lifted", "outcome": outcome, "note": note},
    )
    await outbox.emit(
        session,
        "hold.lifted",
        {"hold_id": hold.id, "reason": hold.reason, "outcome": outcome},
        distributor_id=hold.distributor_id,
    )


async def clear_hold(session: AsyncSession, actor: Principal, hold: Hold, *, note: str | None) -> None:
    """The hold was wrong (or its cause is gone): lift it if still in force, outcome ``cleared``,
    and release its withheld money. Touches no other hold."""
    refuse_if_settled(hold, "cleared")
    if hold.money_settled_at is not None:
        return  # cleared and released already (an appeal approved after a staff lift): nothing moves
    if hold.lifted_at is None:
        await _stamp_lifted(session, actor, hold, "cleared", note)
    else:  # lifted as confirmed earlier, now cleared on appeal
        before = {"outcome": hold.outcome}
        hold.outcome, hold.forfeit_at = "cleared", None
        await session.flush()
        await audit.record(
            session,
            actor,
            "hold.cleared",
            "hold",
            hold.id,
            before=before,
            after={"outcome": "cleared", "note": note},
        )
        await outbox.emit(
            session,
            "hold.lifted",
            {"hold_id": hold.id, "reason": hold.reason, "outcome": "cleared"},
            distributor_id=hold.distributor_id,
        )
    hold.forfeit_at = None
    await release_withheld(session, hold)


async def confirm_hold(
    session: AsyncSession,
    actor: Principal,
    hold: Hold,
    *,
    note: str | None,
    lift: bool,
    final: bool,
    forfeit_after_days: int,
) -> None:
    """The violation is confirmed. ``lift``: the suspension ends too (staff lift); otherwise the hold
    stays in force (appeal rejected). ``final``: the appeal path is exhausted, so forfeit at once."""
    refuse_if_settled(hold, "confirmed")
    if lift and hold.lifted_at is None:
        await _stamp_lifted(session, actor, hold, "confirmed", note)
    elif hold.outcome != "confirmed":
        before = {"outcome": hold.outcome}
        hold.outcome = "confirmed"
        await session.flush()
        await audit.record(
            session,
            actor,
            "hold.confirmed",
            "hold",
            hold.id,
            before=before,
            after={"outcome": "confirmed", "note": note},
        )
    if final:
        hold.forfeit_at = now_utc()
        await session.flush()
        await forfeit_withheld(session, hold)
    elif hold.forfeit_at is None:
        hold.forfeit_at = now_utc() + timedelta(days=forfeit_after_days)
        await session.flush()


async def appeals_exhausted(session: AsyncSession, hold: Hold, *, max_submissions: int | None = None) -> bool:
    """True when the last allowed submission was rejected (no resubmission possible)."""
    cap = max_submissions or get_settings().business.appeal_max_submissions
    rejected = await session.scalar(
        select(func.count()).select_from(Appeal).where(Appeal.hold_id == hold.id, Appeal.status == "rejected")
    )
    return int(rejected or 0) >= cap


# --------------------------------------------------------------------------- money


async def _settle_once(session: AsyncSession, hold: Hold) -> None:
    await session.execute(repo.SETTLE_HOLD_MONEY_ONCE, {"h": hold.id})
    await session.refresh(hold, ["money_settled_at"])


async def release_withheld(session: AsyncSession, hold: Hold) -> int:
    """Release (or hand over) the commissions this hold withholds; returns the amount released."""
    other = await session.scalar(
        select(Hold.id)
        .where(
            Hold.distributor_id == hold.distributor_id,
            Hold.id != hold.id,
            Hold.reason.in_(VIOLATION_REASONS),
            hold_is_active(),
        )
        .order_by(Hold.started_at, Hold.id)
        .limit(1)
    )
    if other is not None:
        # still suspended for another violation: the money stays withheld, under that hold
        await session.execute(repo.HAND_OVER_WITHHELD, {"o": other, "h": hold.id})
        await _settle_once(session, hold)
        return 0
    return await _move_withheld(session, hold, status="pending", kind="withheld_released", to_kind="pending")


async def forfeit_withheld(session: AsyncSession, hold: Hold) -> int:
    """Forfeit the commissions a confirmed hold withholds (D.withheld → forfeited_income)."""
    refuse_if_settled(hold, "confirmed")
    if hold.outcome != "confirmed":
        raise Conflict("only a confirmed hold's money can be forfeited", extra={"outcome": hold.outcome})
    return await _move_withheld(
        session, hold, status="forfeited", kind="withheld_forfeited", to_kind="forfeited_income"
    )


async def _move_withheld(session: AsyncSession, hold: Hold, *, status: str, kind: str, to_kind: str) -> int:
    """Move every commission this hold withholds to ``status`` and its money from D.withheld to
    ``to_kind``, in one statement and one ledger transaction per currency; stamp the hold once.

    The accounts are locked first, in the one lock order (ARCHITECTURE.md, "Lock order"), and only
    then the commission rows: a refund reversal locks the distributor's accounts and then its
    commission rows, and settlement locks ``pending`` and ``withheld`` together; the released
    money's credit to ``pending`` is applied at commit, when that account is already ours."""
    await session.execute(repo.LOCK_WITHHELD_ACCOUNTS, {"d": hold.distributor_id, "to_kind": to_kind})
    rows = (await session.execute(repo.MOVE_WITHHELD_COMMISSIONS, {"h": hold.id, "status": status})).all()
    await _post_by_currency(session, rows, kind=kind, to_kind=to_kind, hold=hold)
    await _settle_once(session, hold)
    return sum(int(r.net) for r in rows)


async def _post_by_currency(
    session: AsyncSession, rows: Sequence[Any], *, kind: str, to_kind: str, hold: Hold
) -> None:
    by_currency: dict[str, list[Any]] = {}
    for r in rows:
        if int(r.net) > 0:
            by_currency.setdefault(r.currency, []).append(r)
    for currency, items in by_currency.items():
        postings = [Posting("withheld", -int(r.net), r.beneficiary_id, r.id) for r in items]
        if to_kind == "pending":
            postings += [Posting("pending", int(r.net), r.beneficiary_id, r.id) for r in items]
        else:
            postings.append(Posting(to_kind, sum(int(r.net) for r in items)))
        await post(session, kind=kind, postings=postings, ref_type="hold", ref_id=hold.id, currency=currency)


async def forfeit_due(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Periodic: forfeit the withheld money of confirmed holds whose forfeit date passed with no
    appeal open. Returns the number of holds handled. Idempotent."""
    at = now or now_utc()
    open_appeal = exists().where(Appeal.hold_id == Hold.id, Appeal.status.in_(OPEN_APPEAL_STATUSES))
    withheld_left = repo.WITHHELD_LEFT
    holds = list(
        await session.scalars(
            select(Hold)
            .where(
                Hold.outcome == "confirmed",
                Hold.forfeit_at <= at,
                ~open_appeal,
                and_(Hold.forfeit_at.is_not(None)),
            )
            .where((Hold.money_settled_at.is_(None)) | withheld_left)
            .order_by(Hold.id)
            .with_for_update(skip_locked=True)
        )
    )
    for hold in holds:
        await forfeit_withheld(session, hold)
    return len(holds)


async def lift_settled_debt_holds(session: AsyncSession, *, distributor_id: int | None = None) -> list[int]:
    """``unpaid_balance`` holds lift themselves (cleared) when nothing is owed any more (repaid or netted)."""
    stmt = repo.SETTLED_DEBT_HOLDS
    ids = list(await session.scalars(stmt, {"d": distributor_id}))
    for hold_id in ids:
        hold = await get_hold(session, hold_id)
        await clear_hold(session, SYSTEM, hold, note="debt repaid or netted")
    return ids
