"""Appeals (申诉): a state machine with one transition function, history rows, audit, notices.

``submitted`` → ``in_review`` (claimed; a claim idle longer than ``appeal_claim_idle_minutes`` may
be taken over, and a job releases stale claims) → ``approved`` (this hold cleared, its withheld
money released) / ``rejected`` (hold confirmed; forfeited at once on the last allowed submission,
else after ``forfeit_after_days`` unless resubmitted) / ``info_requested`` (SLA clock paused until
the owner replies, then back to ``submitted`` with the due date pushed by the pause) /
``escalated`` (only a risk_admin, the senior reviewer, may claim and decide it from then on).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.calendar.service import working_days_after
from distnet.kit import audit, outbox
from distnet.kit.auth import SYSTEM, Principal, Role
from distnet.kit.contract import Page
from distnet.kit.errors import ValidationFailed
from distnet.kit.pagination import decode_cursor, encode_cursor
from distnet.models import Appeal, AppealEvent, Hold
from distnet.risk import holds
from distnet.risk import repository as repo
from distnet.risk.errors import (
    AppealAlreadyOpen,
    AppealClaimedByOther,
    AppealLimitReached,
    AppealNotFound,
    AppealTransitionRefused,
    HoldNotAppealable,
    NotYourClaim,
    ReviewerConflictOfInterest,
    SeniorReviewerRequired,
)
from distnet.risk.schemas import AppealHistoryEntry, AppealHold, AppealSummary, AppealView
from distnet.settings import BusinessSettings, Settings, get_settings


class AppealStatus(StrEnum):
    submitted = "submitted"
    in_review = "in_review"
    info_requested = "info_requested"
    escalated = "escalated"
    approved = "approved"
    rejected = "rejected"


class AppealAction(StrEnum):
    claim = "claim"
    approve = "approve"
    reject = "reject"
    request_info = "request_info"
    escalate = "escalate"
    reply = "reply"
    release = "release"


S, A = AppealStatus, AppealAction
TRANSITIONS: frozenset[tuple[AppealStatus, AppealAction, AppealStatus]] = frozenset(
    {
        (S.submitted, A.claim, S.in_review),
        (S.escalated, A.claim, S.in_review),  # a senior reviewer takes an escalated appeal
        (S.in_review, A.claim, S.in_review),  # take over an idle claim
        (S.in_review, A.approve, S.approved),
        (S.in_review, A.reject, S.rejected),
        (S.in_review, A.request_info, S.info_requested),
        (S.in_review, A.escalate, S.escalated),
        (S.info_requested, A.reply, S.submitted),
        (S.in_review, A.release, S.submitted),  # stale claim released back to the queue
        (S.in_review, A.release, S.escalated),  # ... to the senior queue if it was escalated
    }
)
OPEN = (S.submitted, S.in_review, S.info_requested, S.escalated)


def transition(current: str, action: AppealAction, to: AppealStatus) -> AppealStatus:
    """The one place that says which moves exist; everything else is refused with a 409."""
    if (AppealStatus(current), action, to) not in TRANSITIONS:
        raise AppealTransitionRefused(
            f"an appeal that is {current} cannot {action.value}",
            extra={"current_status": current, "action": action.value},
        )
    return to


def now_utc() -> datetime:
    return datetime.now(UTC)


async def _event(
    session: AsyncSession,
    appeal: Appeal,
    actor: Principal,
    action: str,
    before: str | None,
    note: str | None = None,
    attachments: list[Any] | None = None,
) -> None:
    event = AppealEvent(
        appeal_id=appeal.id,
        actor=actor.actor,
        action=action,
        from_status=before,
        to_status=appeal.status,
        note=note,
        attachments=attachments or [],
    )
    session.add(event)
    await session.flush()
    await audit.record(
        session,
        actor,
        f"appeal.{action}",
        "appeal",
        appeal.id,
        before={"status": before},
        after={"status": appeal.status, "assignee": appeal.assignee, "note": note},
    )
    # the event names its appeal_event row (whose note the notice quotes) rather than copying the
    # note: a consumer running after a later step still quotes this step, and erasure of the
    # appeal's texts reaches the note in one place
    await outbox.emit(
        session,
        "appeal.updated",
        {
            "appeal_id": appeal.id,
            "hold_id": appeal.hold_id,
            "status": appeal.status,
            "action": action,
            "appeal_event_id": event.id,
        },
        distributor_id=appeal.distributor_id,
    )


# --------------------------------------------------------------------------- owner side


async def submit(
    session: AsyncSession,
    principal: Principal,
    business: BusinessSettings,
    *,
    hold_id: int,
    statement: str,
    evidence: list[Any],
) -> AppealView:
    hold = await holds.get_hold(session, hold_id, lock=True)
    if principal.distributor_id != hold.distributor_id and not principal.has(Role.admin):
        raise holds.HoldNotFound(f"no hold {hold_id}")
    if not hold.appealable or hold.reason == "maintenance":
        raise HoldNotAppealable("maintenance holds end by themselves and cannot be appealed")
    if hold.outcome == "cleared":
        raise HoldNotAppealable("this hold was cleared: there is nothing to appeal")
    if hold.outcome == "confirmed" and hold.money_settled_at is not None:
        raise HoldNotAppealable("the appeal path of this hold is exhausted")
    if not statement.strip():
        raise ValidationFailed("statement is required", field="statement")
    previous = (await session.execute(select(Appeal.status).where(Appeal.hold_id == hold_id))).scalars().all()
    if any(s in OPEN for s in previous):
        raise AppealAlreadyOpen(f"hold {hold_id} already has an open appeal")
    if len(previous) >= business.appeal_max_submissions:
        raise AppealLimitReached(
            f"hold {hold_id} was appealed {len(previous)} times (at most {business.appeal_max_submissions})"
        )
    at = now_utc()
    appeal = Appeal(
        hold_id=hold_id,
        distributor_id=hold.distributor_id,
        statement=statement.strip(),
        evidence=evidence,
        status=S.submitted.value,
        submission_no=len(previous) + 1,
        due_at=await working_days_after(
            session, start=at, days=business.appeal_due_business_days, zone=business.zone
        ),
    )
    try:
        async with session.begin_nested():
            session.add(appeal)
            await session.flush()
    except IntegrityError as exc:  # a concurrent submission won the partial unique index
        raise AppealAlreadyOpen(f"hold {hold_id} already has an open appeal") from exc
    await _event(session, appeal, principal, "submitted", None, statement.strip(), evidence)
    return await appeal_view(session, appeal, full=False)


async def reply(
    session: AsyncSession, principal: Principal, appeal_id: int, *, message: str, attachments: list[Any]
) -> AppealView:
    appeal = await _get(session, appeal_id, lock=True)
    if principal.distributor_id != appeal.distributor_id and not principal.has(Role.admin):
        raise AppealNotFound(f"no appeal {appeal_id}")
    if not message.strip():
        raise ValidationFailed("message is required", field="message")
    before = appeal.status
    if appeal.status == S.info_requested:
        appeal.status = transition(appeal.status, A.reply, S.submitted)
        at = now_utc()
        if appeal.paused_at is not None:  # the SLA clock did not run while we waited for the owner
            appeal.due_at = appeal.due_at + (at - appeal.paused_at)
        appeal.paused_at = None
        appeal.claimed_at = at  # the reviewer who asked gets it back first
        await _event(session, appeal, principal, "replied", before, message, attachments)
    elif appeal.status in OPEN:
        await _event(session, appeal, principal, "message", before, message, attachments)
    else:
        raise AppealTransitionRefused(
            f"appeal {appeal_id} is {appeal.status}: decided appeals take no messages"
        )
    return await appeal_view(session, appeal, full=False)


# --------------------------------------------------------------------------- reviewer side


async def _get(session: AsyncSession, appeal_id: int, *, lock: bool = False) -> Appeal:
    stmt = select(Appeal).where(Appeal.id == appeal_id)
    if lock:
        stmt = stmt.with_for_update()
    appeal = await session.scalar(stmt)
    if appeal is None:
        raise AppealNotFound(f"no appeal {appeal_id}")
    return appeal


def _check_reviewer(principal: Principal, appeal: Appeal, hold: Hold) -> None:
    if (
        hold.source_type == "actor"
        and principal.key_id is not None
        and (hold.placed_by_key_id == principal.key_id or principal.is_person(hold.placed_by))
    ):
        raise ReviewerConflictOfInterest("you placed this hold: another reviewer must decide its appeal")
    if (appeal.escalated or appeal.status == S.escalated) and not principal.has(Role.risk_admin):
        raise SeniorReviewerRequired("this appeal was escalated: a risk admin decides it")


async def claim(
    session: AsyncSession, principal: Principal, business: BusinessSettings, appeal_id: int
) -> AppealView:
    appeal = await _get(session, appeal_id, lock=True)
    hold = await holds.get_hold(session, appeal.hold_id)
    at = now_utc()
    if appeal.status == S.in_review and not principal.is_person(appeal.assignee):
        idle = appeal.claimed_at is None or appeal.claimed_at < at - timedelta(
            minutes=business.appeal_claim_idle_minutes
        )
        if not idle:
            raise AppealClaimedByOther(
                f"appeal {appeal_id} is claimed by {appeal.assignee}", extra={"assignee": appeal.assignee}
            )
    if (
        appeal.status == S.submitted
        and appeal.assignee is not None
        and not principal.is_person(appeal.assignee)
    ):
        # back from the owner: the reviewer who asked keeps priority until the claim goes idle
        if appeal.claimed_at and appeal.claimed_at >= at - timedelta(
            minutes=business.appeal_claim_idle_minutes
        ):
            raise AppealClaimedByOther(
                f"appeal {appeal_id} is claimed by {appeal.assignee}", extra={"assignee": appeal.assignee}
            )
    before = appeal.status
    to = transition(appeal.status, A.claim, S.in_review)
    _check_reviewer(principal, appeal, hold)
    appeal.status, appeal.assignee, appeal.assignee_key_id, appeal.claimed_at = (
        to,
        principal.actor,
        principal.key_id,
        at,
    )
    await _event(session, appeal, principal, "claimed", before)
    return await appeal_view(session, appeal, full=True)


DECISIONS = {
    "approve": (A.approve, S.approved),
    "reject": (A.reject, S.rejected),
    "request_info": (A.request_info, S.info_requested),
    "escalate": (A.escalate, S.escalated),
}


async def decide(
    session: AsyncSession,
    principal: Principal,
    business: BusinessSettings,
    appeal_id: int,
    *,
    decision: str,
    note: str | None,
) -> AppealView:
    if decision not in DECISIONS:
        raise ValidationFailed(f"decision must be one of {', '.join(DECISIONS)}", field="decision")
    action, to = DECISIONS[decision]
    appeal = await _get(session, appeal_id, lock=True)
    hold = await holds.get_hold(session, appeal.hold_id, lock=True)
    if appeal.status == S.in_review and not principal.is_person(appeal.assignee):
        raise NotYourClaim(f"appeal {appeal_id} is claimed by {appeal.assignee}; claim it first")
    before = appeal.status
    new = transition(appeal.status, action, to)
    _check_reviewer(principal, appeal, hold)
    appeal.status = new
    at = now_utc()
    appeal.claimed_at = at
    if action == A.approve:
        await holds.clear_hold(session, principal, hold, note=note or f"appeal {appeal.id} approved")
        appeal.decided_at, appeal.decided_by = at, principal.actor
    elif action == A.reject:
        final = appeal.submission_no >= business.appeal_max_submissions
        await holds.confirm_hold(
            session,
            principal,
            hold,
            note=note or f"appeal {appeal.id} rejected",
            lift=False,
            final=final,
            forfeit_after_days=business.forfeit_after_days,
        )
        appeal.decided_at, appeal.decided_by = at, principal.actor
    elif action == A.request_info:
        appeal.paused_at = at
    elif action == A.escalate:
        appeal.escalated = True
        appeal.assignee = appeal.assignee_key_id = appeal.claimed_at = None
    await _event(session, appeal, principal, decision, before, note)
    return await appeal_view(session, appeal, full=True)


async def release_stale_claims(
    session: AsyncSession, settings: Settings | None = None, *, now: datetime | None = None
) -> int:
    """Periodic (worker/jobs.py): claims idle too long go back to their queue."""
    business = (settings or get_settings()).business
    at = now or now_utc()
    stale = list(
        await session.scalars(
            select(Appeal)
            .where(
                Appeal.status == S.in_review,
                Appeal.claimed_at < at - timedelta(minutes=business.appeal_claim_idle_minutes),
            )
            .with_for_update(skip_locked=True)
        )
    )
    for appeal in stale:
        before = appeal.status
        appeal.status = transition(before, A.release, S.escalated if appeal.escalated else S.submitted)
        appeal.assignee = appeal.assignee_key_id = appeal.claimed_at = None
        await _event(session, appeal, SYSTEM, "claim_expired", before)
    return len(stale)


# --------------------------------------------------------------------------- views


async def _appeal_fields(session: AsyncSession, appeal: Appeal, *, full: bool) -> dict[str, Any]:
    """The fields an appeal's summary and its full view share."""
    hold = await holds.get_hold(session, appeal.hold_id)
    extra: dict[str, Any] = {}
    if full:
        extra = dict(
            assignee=appeal.assignee,
            claimed_at=appeal.claimed_at,
            decided_by=appeal.decided_by,
            overdue=appeal.paused_at is None and appeal.status in OPEN and appeal.due_at < now_utc(),
        )
    return dict(
        id=appeal.id,
        hold_id=appeal.hold_id,
        distributor_id=appeal.distributor_id,
        status=appeal.status,
        submission_no=appeal.submission_no,
        statement=appeal.statement,
        evidence=appeal.evidence,
        due_at=appeal.due_at,
        paused=appeal.paused_at is not None,
        escalated=appeal.escalated,
        created_at=appeal.created_at,
        decided_at=appeal.decided_at,
        hold=AppealHold(
            reason=hold.reason,
            rule=hold.rule_name,
            status=holds.hold_status(hold),
            outcome=hold.outcome,
            started_at=hold.started_at,
            evidence_summary=holds.evidence_summary(hold.evidence),
            evidence=hold.evidence if full else msgspec.UNSET,
            placed_by=hold.placed_by if full else msgspec.UNSET,
        ),
        **extra,
    )


async def appeal_summary(session: AsyncSession, appeal: Appeal, *, full: bool) -> AppealSummary:
    """An appeal without its history (the reviewers' queue)."""
    return AppealSummary(**await _appeal_fields(session, appeal, full=full))


async def appeal_view(session: AsyncSession, appeal: Appeal, *, full: bool) -> AppealView:
    """An appeal with its history; ``full``: as reviewers see it (actors, assignee, the hold's evidence)."""
    fields = await _appeal_fields(session, appeal, full=full)
    events = (
        await session.scalars(
            select(AppealEvent).where(AppealEvent.appeal_id == appeal.id).order_by(AppealEvent.id)
        )
    ).all()
    history = [
        AppealHistoryEntry(
            at=e.at,
            action=e.action,
            from_=e.from_status,
            to=e.to_status,
            note=e.note,
            attachments=e.attachments,
            actor=e.actor if full else msgspec.UNSET,
        )
        for e in events
    ]
    return AppealView(**fields, history=history)


async def appeal_for_view(session: AsyncSession, principal: Principal, appeal_id: int) -> AppealView:
    appeal = await _get(session, appeal_id)
    staff = principal.has(Role.risk_reviewer, Role.risk_admin)
    if not staff and principal.distributor_id != appeal.distributor_id:
        raise AppealNotFound(f"no appeal {appeal_id}")
    return await appeal_view(session, appeal, full=staff)


async def queue(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    reason: str | None,
    assignee: str | None,
    limit: int,
    cursor: str | None,
) -> Page[AppealSummary]:
    if status is not None and status not in AppealStatus.__members__:
        raise ValidationFailed(f"status must be one of {', '.join(AppealStatus)}", field="status")
    after = decode_cursor(cursor, 2)
    stmt = select(Appeal).join(Hold, Hold.id == Appeal.hold_id)
    stmt = stmt.where(Appeal.status == status) if status else stmt.where(Appeal.status.in_(OPEN))
    if reason:
        stmt = stmt.where(Hold.reason == reason)
    if assignee:
        stmt = stmt.where(Appeal.assignee == (principal.actor if assignee == "me" else assignee))
    if after is not None:
        try:
            due, last_id = datetime.fromisoformat(str(after[0])), int(after[1])
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("cursor is not valid", field="cursor") from exc
        stmt = stmt.where(func.row(Appeal.due_at, Appeal.id) > func.row(due, last_id))
    rows = list(await session.scalars(stmt.order_by(Appeal.due_at, Appeal.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[await appeal_summary(session, a, full=True) for a in rows],
        next_cursor=encode_cursor(rows[-1].due_at.isoformat(), rows[-1].id) if more else None,
    )


async def open_appeal_count(session: AsyncSession) -> int:
    return int(await session.scalar(repo.OPEN_APPEALS_COUNT) or 0)
