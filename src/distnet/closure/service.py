"""Closing an account (注销), verified by a one-time code, and erasing its personal data.

States (state.py): ``active`` → ``closing`` → ``closed`` → ``erased``, or ``active`` → ``closed``
when nothing is left to pay. A closure is refused (409, every reason at once) while money is owed,
an appeal is open or a violation hold is active. Otherwise the account leaves the network at once
(its downline moves up to its sponsor, its card is cancelled), and:

- with money still pending, available or in a payout, it is ``closing`` and waits for its final
  payout (``closure_waits_for_payout``). The payout code pays such accounts whatever their
  amount (``CLOSING_ACCOUNTS_SQL``). When their final item is paid it calls
  ``complete_if_paid(session, distributor_id=)`` (the ``payout.paid`` consumer here calls it too).
  That closes the account once nothing is left;
- otherwise it is ``closed`` now. Personal data is erased ``DISTNET_ERASURE_RETENTION_DAYS`` after
  closing (``erase_due``, a daily job).

An admin closes without a code, with a reason (audited). That is also how a violator is
terminated: an active violation hold does not stop an admin, and the account is closed at once
(withheld money stays withheld and follows the hold's own outcome).

Erasure reaches every copy: the distributor's personal fields, closure text, appeal statements,
evidence and messages, notices, one-time code addresses, the audit details about the person and
their appeals, and published outbox payloads. Ids, codes, amounts and states stay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards import service as cards
from distnet.closure import repository as repo
from distnet.closure.schemas import Blocker, ClosureView
from distnet.closure.state import ClosureState, transition
from distnet.kit import audit, outbox
from distnet.kit.auth import SYSTEM, Principal, Role, ensure_self_or_staff
from distnet.kit.errors import NotFound, ValidationFailed
from distnet.kit.money import format_amount
from distnet.kit.ratelimit import RateLimiter
from distnet.models import Distributor
from distnet.network import repository as network_repo
from distnet.network.closure import closure_blockers
from distnet.network.errors import ClosureRefused, DistributorClosed, DistributorNotFound
from distnet.notifications.service import notify, redact
from distnet.settings import Settings
from distnet.verification.service import IssuedCode, check_code, issue_code

REASONS = ("no_longer_selling", "privacy", "dissatisfied", "other")

WAIT_TEXT = {
    "pending": "commissions of {amount} are not yet available (settled when their hold days pass)",
    "available": "{amount} available, paid in the next payout run",
    "reserved": "a payout of {amount} is in progress",
}


def _now() -> datetime:
    return datetime.now(UTC)


async def waits_for(session: AsyncSession, *, distributor_id: int) -> list[Blocker]:
    rows = (await session.execute(repo.WAITING, {"d": distributor_id})).all()
    return [
        Blocker(f"money_{r.kind}", WAIT_TEXT[r.kind].format(amount=format_amount(int(r.balance))))
        for r in rows
    ]


async def closure_waits_for_payout(session: AsyncSession, *, distributor_id: int) -> bool:
    """True while a ``closing`` account still has money to be paid out."""
    status = await session.scalar(repo.STATUS, {"d": distributor_id})
    return status == ClosureState.closing and bool(await waits_for(session, distributor_id=distributor_id))


async def _distributor(session: AsyncSession, *, distributor_id: int, lock: bool = False) -> Distributor:
    if (
        await session.scalar(repo.LOCK_DISTRIBUTOR if lock else repo.DISTRIBUTOR, {"d": distributor_id})
        is None
    ):
        raise DistributorNotFound(f"no distributor {distributor_id}")
    found = await session.get(Distributor, distributor_id, populate_existing=True)
    assert found is not None
    return found


def _own(principal: Principal) -> int:
    if principal.distributor_id is None:
        raise NotFound("this key belongs to no distributor")
    return principal.distributor_id


async def request_code(
    session: AsyncSession, *, settings: Settings, principal: Principal, limiter: RateLimiter | None = None
) -> IssuedCode:
    """``POST /me/closure/code``: a code to the owner's verified phone or e-mail (else the inbox)."""
    distributor_id = _own(principal)
    d = await _distributor(session, distributor_id=distributor_id)
    if d.status != ClosureState.active:
        raise DistributorClosed(f"the account is already {d.status}")
    return await issue_code(
        session, settings=settings, distributor_id=distributor_id, purpose="closure", limiter=limiter
    )


def _check_reason(reason: str | None, reason_text: str | None) -> None:
    if reason is None:
        raise ValidationFailed(f"reason is required, one of {', '.join(REASONS)}", field="reason")
    if reason == "other" and not (reason_text or "").strip():
        raise ValidationFailed("tell us the reason in reason_text", field="reason_text")


async def close(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    reason: str | None,
    reason_text: str | None = None,
    code: str | None = None,
    note: str | None = None,
    limiter: RateLimiter | None = None,
) -> ClosureView:
    """The owner closes with the one-time code; an admin without it (see module doc)."""
    ensure_self_or_staff(principal, distributor_id, Role.admin)
    by_owner = principal.distributor_id == distributor_id
    _check_reason(reason, reason_text)
    if by_owner and not code:
        raise ValidationFailed(
            "the one-time code from POST /api/v1/me/closure/code is required", field="code"
        )
    await network_repo.lock_network_moves(session)
    d = await _distributor(session, distributor_id=distributor_id, lock=True)
    did, sponsor_id, before = d.id, d.sponsor_id, d.status
    if before in (ClosureState.closed, ClosureState.erased):
        raise DistributorClosed("the account is already closed")
    if before == ClosureState.closing:
        raise DistributorClosed("the account is already closing; it closes after its final payout")
    blockers = [b for b in await closure_blockers(session, did) if b["code"] != "payout_in_progress"]
    violator = any(b["code"] == "active_violation_hold" for b in blockers)
    if not by_owner:  # an admin terminates a violator: the hold does not stop it
        blockers = [b for b in blockers if b["code"] != "active_violation_hold"]
    if blockers:
        raise ClosureRefused("the account cannot be closed yet", extra={"reasons": blockers})
    if by_owner:
        await check_code(
            session,
            settings=settings,
            distributor_id=did,
            purpose="closure",
            code=code or "",
            limiter=limiter,
        )
    waiting = await waits_for(session, distributor_id=did)
    target = ClosureState.closing if waiting and not violator else ClosureState.closed
    transition(before, target)
    await network_repo.lock_subtree(session, did)
    children = await network_repo.compress_out(session, did, sponsor_id)
    now = _now()
    values: dict[str, object] = {
        "status": target.value,
        "closure_reason": reason,
        "closure_note": (reason_text or "").strip() or None,
        "closure_requested_at": now,
    }
    if target == ClosureState.closed:
        values |= {
            "closed_at": now,
            "erase_after": now + timedelta(days=settings.business.erasure_retention_days),
        }
    await session.execute(update(Distributor).where(Distributor.id == did).values(**values))
    card = await cards.live_card(session, distributor_id=did)
    if card is not None:
        await cards.cancel_card(session, principal=principal, card=card, reason="account_closed")
    await audit.record(
        session,
        principal,
        f"distributor.{target.value}",
        "distributor",
        did,
        before={"status": before},
        after={
            "status": target.value,
            "reason": reason,
            "reason_text": reason_text,
            "by": "owner" if by_owner else "admin",
            "verified_by_code": by_owner,
            "violator_terminated": violator and not by_owner,
            "note": note,
            "children_moved": children,
            "new_sponsor_id": sponsor_id,
            "waits_for": [w.code for w in waiting] if target == ClosureState.closing else [],
        },
    )
    if target == ClosureState.closed:
        await outbox.emit(
            session, "distributor.closed", {"id": did, "children_moved": children}, distributor_id=did
        )
    else:
        await outbox.emit(
            session, "distributor.closing", {"id": did, "children_moved": children}, distributor_id=did
        )
        total = sum(int(r[1]) for r in (await session.execute(repo.WAITING, {"d": did})).all())
        await notify(
            session,
            distributor_id=did,
            event_key=f"closing:{did}",
            kind="closure_pending_payout",
            params={"amount": total, "retention_days": settings.business.erasure_retention_days},
        )
    session.expire_all()
    result = await view(session, distributor_id=did)
    result.downline_moved_to, result.children_moved = sponsor_id, children
    return result


async def complete_if_paid(session: AsyncSession, *, settings: Settings, distributor_id: int) -> bool:
    """Close a ``closing`` account once nothing is left to pay (payout code and the ``payout.paid``
    consumer call it). Idempotent; returns True when it closed the account now."""
    status = await session.scalar(repo.LOCK_STATUS, {"d": distributor_id})
    if status != ClosureState.closing or await waits_for(session, distributor_id=distributor_id):
        return False
    transition(status, ClosureState.closed)
    now = _now()
    await session.execute(
        update(Distributor)
        .where(Distributor.id == distributor_id)
        .values(
            status=ClosureState.closed.value,
            closed_at=now,
            erase_after=now + timedelta(days=settings.business.erasure_retention_days),
        )
    )
    await audit.record(
        session,
        SYSTEM,
        "distributor.closed",
        "distributor",
        distributor_id,
        before={"status": status},
        after={"status": "closed", "after": "final payout paid"},
    )
    await outbox.emit(
        session,
        "distributor.closed",
        {"id": distributor_id, "children_moved": 0},
        distributor_id=distributor_id,
    )
    return True


async def reopen_after_return(session: AsyncSession, *, distributor_ids: list[int]) -> list[int]:
    """A closed account whose payout came back from the bank (退票) has money again: it is
    ``closing`` again and waits for a new final payout; its erasure date is cleared (the payout
    needs its payout account and name). An erased account stays erased: finance settles it by
    hand. Returns the accounts reopened."""
    if not distributor_ids:
        return []
    closed = [int(i) for i in await session.scalars(repo.LOCK_CLOSED_AMONG, {"ids": distributor_ids})]
    for did in closed:
        transition(ClosureState.closed, ClosureState.closing)
        await session.execute(
            update(Distributor)
            .where(Distributor.id == did)
            .values(status=ClosureState.closing.value, closed_at=None, erase_after=None)
        )
        await audit.record(
            session,
            SYSTEM,
            "distributor.closing",
            "distributor",
            did,
            before={"status": "closed"},
            after={"status": "closing", "after": "the final payout was returned by the bank"},
        )
    return closed


async def view(session: AsyncSession, *, distributor_id: int) -> ClosureView:
    d = await _distributor(session, distributor_id=distributor_id)
    waiting = await waits_for(session, distributor_id=d.id) if d.status == ClosureState.closing else []
    blockers = (
        [
            Blocker(b["code"], b["detail"])
            for b in await closure_blockers(session, d.id)
            if b["code"] != "payout_in_progress"
        ]
        if d.status == ClosureState.active
        else []
    )
    return ClosureView(
        distributor_id=d.id,
        state=d.status,
        reason=d.closure_reason,
        reason_text=d.closure_note,
        requested_at=d.closure_requested_at,
        closure_waits_for_payout=bool(waiting),
        waits_for=waiting,
        blockers=blockers,
        closed_at=d.closed_at,
        erase_after=d.erase_after,
        erased_at=d.erased_at,
    )


async def my_view(session: AsyncSession, *, principal: Principal) -> ClosureView:
    return await view(session, distributor_id=_own(principal))


# --------------------------------------------------------------------------- erasure


async def erase_due(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Erase the personal data of accounts closed longer than the retention period, everywhere
    (module doc). Set-based, idempotent; returns the accounts erased."""
    due = [int(i) for i in await session.scalars(repo.LOCK_DUE_FOR_ERASURE, {"now": now})]
    if not due:
        return 0
    params = {"ids": due}
    for statement in repo.ERASE:
        await session.execute(statement, params)
    await redact(session, distributor_ids=repo.THE_IDS, params=params)
    await session.execute(repo.ERASE_DISTRIBUTORS, params)
    await audit.record(
        session, SYSTEM, "distributor.erased", "distributor_batch", len(due), after={"ids": due}
    )
    return len(due)
