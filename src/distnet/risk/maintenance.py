"""Maintenance windows (系统维护): announced, scoped suspensions that restore themselves.

A window's holds are rows with ``started_at = window.starts_at`` and ``ends_at = window.ends_at``,
inserted idempotently for the distributors in scope when the window is created and again by
:func:`start_due_windows` (late joiners). They are active purely by time (``hold_is_active``), so a
card is suspended exactly for the window and restored at its end even if no worker runs then; the
end job only stamps them lifted and sends the notice, exactly once (guarded by ``ended_at``).
A window's holds never touch another hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import rowcount
from distnet.kit import audit, outbox
from distnet.kit.auth import SYSTEM, Principal
from distnet.kit.errors import ValidationFailed
from distnet.models import MaintenanceWindow
from distnet.models.network import RANKS
from distnet.risk import repository as repo
from distnet.risk.errors import WindowFinished, WindowNotFound
from distnet.risk.schemas import Announcement, CreatedWindow, WindowView

START_LEAD = timedelta(minutes=5)
"""The start job treats windows starting this soon as due (holds are time-bound anyway)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


def _check_scope(scope: dict[str, Any] | None) -> dict[str, Any]:
    scope = scope or {}
    errors = []
    for key in scope:
        if key not in ("all", "regions", "ranks"):
            errors.append({"field": f"scope.{key}", "message": "unknown scope key (all, regions, ranks)"})
    regions, ranks = scope.get("regions"), scope.get("ranks")
    for key, values in (("regions", regions), ("ranks", ranks)):
        if values is not None and (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and 0 < len(v) <= 32 for v in values)
        ):
            errors.append({"field": f"scope.{key}", "message": "must be a non-empty list of names"})
    if isinstance(ranks, list):
        bad = [r for r in ranks if r not in RANKS]
        if bad:
            errors.append(
                {"field": "scope.ranks", "message": f"unknown rank(s) {bad}; ranks are {list(RANKS)}"}
            )
    if errors:
        raise ValidationFailed("; ".join(e["message"] for e in errors), errors=errors)
    out: dict[str, Any] = {}
    if regions:
        out["regions"] = sorted(set(regions))
    if ranks:
        out["ranks"] = sorted(set(ranks))
    return out or {"all": True}


async def place_window_holds(session: AsyncSession, window: MaintenanceWindow) -> int:
    """Insert the window's holds for every in-scope distributor with a live card (idempotent)."""
    scope = window.scope or {}
    result = await session.execute(
        repo.INSERT_WINDOW_HOLDS,
        {
            "w": window.id,
            "subject": f"window:{window.id}",
            "message": window.message[:2000],
            "starts": window.starts_at,
            "ends": window.ends_at,
            "regions": scope.get("regions"),
            "ranks": scope.get("ranks"),
        },
    )
    return rowcount(result)


def check_notice(
    starts_at: datetime,
    *,
    now: datetime,
    min_notice_hours: float,
    emergency: bool,
    emergency_reason: str | None,
) -> None:
    """A window is announced at least ``min_notice_hours`` ahead (distributors plan around it);
    a sooner one must be marked ``emergency`` with a reason, which the audit log keeps."""
    if emergency and not (emergency_reason or "").strip():
        raise ValidationFailed("an emergency window needs a reason", field="emergency_reason")
    notice = starts_at - now
    if not emergency and notice < timedelta(hours=min_notice_hours):
        hours = max(notice.total_seconds() / 3600, 0)
        raise ValidationFailed(
            f"a maintenance window needs {min_notice_hours:g} hours' notice; this one starts in {hours:.1f} hours. "
            "Move starts_at, or mark it emergency with emergency_reason",
            field="starts_at",
        )


async def create_window(
    session: AsyncSession,
    principal: Principal,
    *,
    starts_at: datetime,
    ends_at: datetime,
    scope: dict[str, Any] | None,
    message: str,
    emergency: bool = False,
    emergency_reason: str | None = None,
    min_notice_hours: float = 24,
) -> CreatedWindow:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValidationFailed("times need a time zone (RFC 3339)", field="starts_at")
    if ends_at <= starts_at:
        raise ValidationFailed("ends_at must be after starts_at", field="ends_at")
    if ends_at <= now_utc():
        raise ValidationFailed("the window has already ended", field="ends_at")
    if not message.strip():
        raise ValidationFailed("message is required", field="message")
    check_notice(
        starts_at,
        now=now_utc(),
        min_notice_hours=min_notice_hours,
        emergency=emergency,
        emergency_reason=emergency_reason,
    )
    window = MaintenanceWindow(
        starts_at=starts_at,
        ends_at=ends_at,
        scope=_check_scope(scope),
        message=message.strip(),
        created_by=principal.actor,
        announced_at=now_utc(),
        emergency=emergency,
        emergency_reason=(emergency_reason or "").strip() or None,
    )
    session.add(window)
    await session.flush()
    placed = await place_window_holds(session, window)
    view = _public(window)
    public = msgspec.to_builtins(view)
    await audit.record(
        session,
        principal,
        "maintenance_window.created",
        "maintenance_window",
        window.id,
        after={**public, "holds_placed": placed, "emergency_reason": window.emergency_reason},
    )
    # the announcement is the notice ahead of the start
    await outbox.emit(session, "maintenance.announced", public)
    return CreatedWindow(**msgspec.structs.asdict(view), holds_placed=placed)


def _public(w: MaintenanceWindow, at: datetime | None = None) -> Announcement:
    at = at or now_utc()
    if w.cancelled_at is not None:
        status = "cancelled"
    elif w.ends_at <= at:
        status = "ended"
    elif w.starts_at <= at:
        status = "current"
    else:
        status = "upcoming"
    return Announcement(
        id=w.id,
        starts_at=w.starts_at.isoformat(),
        ends_at=w.ends_at.isoformat(),
        scope=w.scope,
        message=w.message,
        status=status,
        emergency=bool(w.emergency),
    )


def window_view(w: MaintenanceWindow) -> WindowView:
    return WindowView(
        **msgspec.structs.asdict(_public(w)),
        created_by=w.created_by,
        announced_at=w.announced_at,
        started_at=w.started_at,
        ended_at=w.ended_at,
        cancelled_at=w.cancelled_at,
    )


async def announcements(session: AsyncSession) -> list[Announcement]:
    rows = await session.scalars(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.cancelled_at.is_(None), MaintenanceWindow.ends_at > text("now()"))
        .order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
        .limit(100)
    )
    return [_public(w) for w in rows]


async def list_windows(session: AsyncSession, *, limit: int) -> list[WindowView]:
    rows = await session.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id.desc()).limit(limit))
    return [window_view(w) for w in rows]


async def get_window(session: AsyncSession, window_id: int) -> MaintenanceWindow:
    w = await session.scalar(
        select(MaintenanceWindow).where(MaintenanceWindow.id == window_id).with_for_update()
    )
    if w is None:
        raise WindowNotFound(f"no maintenance window {window_id}")
    return w


async def cancel_window(session: AsyncSession, principal: Principal, window_id: int) -> WindowView:
    w = await get_window(session, window_id)
    if w.cancelled_at is not None or w.ended_at is not None or w.ends_at <= now_utc():
        raise WindowFinished(f"window {window_id} is already over")
    w.cancelled_at = now_utc()
    lifted = await _stamp_holds_lifted(session, w, at=w.cancelled_at, note="maintenance cancelled")
    await audit.record(
        session,
        principal,
        "maintenance_window.cancelled",
        "maintenance_window",
        w.id,
        after={"holds_lifted": lifted},
    )
    await outbox.emit(session, "maintenance.cancelled", msgspec.to_builtins(_public(w)))
    return window_view(w)


async def _stamp_holds_lifted(session: AsyncSession, w: MaintenanceWindow, *, at: datetime, note: str) -> int:
    # only this window's own holds: a maintenance hold never clears another hold
    result = await session.execute(repo.LIFT_WINDOW_HOLDS, {"w": w.id, "at": at, "note": note})
    return rowcount(result)


async def start_due_windows(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Periodic: add holds for late joiners of windows about to start or running; stamp and announce
    the start once. Returns holds placed."""
    at = now or now_utc()
    windows = list(
        await session.scalars(
            select(MaintenanceWindow)
            .where(
                MaintenanceWindow.cancelled_at.is_(None),
                MaintenanceWindow.ended_at.is_(None),
                MaintenanceWindow.starts_at <= at + START_LEAD,
                MaintenanceWindow.ends_at > at,
            )
            .order_by(MaintenanceWindow.id)
            .with_for_update(skip_locked=True)
        )
    )
    placed = 0
    for w in windows:
        placed += await place_window_holds(session, w)
        if w.started_at is None and w.starts_at <= at:
            w.started_at = at
            await audit.record(session, SYSTEM, "maintenance_window.started", "maintenance_window", w.id)
            await outbox.emit(session, "maintenance.started", msgspec.to_builtins(_public(w, at)))
    await session.flush()
    return placed


async def end_due_windows(session: AsyncSession, *, now: datetime | None = None) -> list[int]:
    """Periodic: windows past their end get their holds stamped lifted and the end notice, exactly
    once. The cards were already restored at ``ends_at`` by time."""
    at = now or now_utc()
    ended = []
    ids = list(await session.scalars(repo.END_WINDOWS, {"at": at}))
    for window_id in sorted(ids):
        w = await session.get(MaintenanceWindow, window_id)
        assert w is not None
        await session.refresh(w)
        lifted = await _stamp_holds_lifted(session, w, at=w.ends_at, note="maintenance ended")
        await audit.record(
            session,
            SYSTEM,
            "maintenance_window.ended",
            "maintenance_window",
            w.id,
            after={"holds_lifted": lifted},
        )
        await outbox.emit(session, "maintenance.ended", msgspec.to_builtins(_public(w, at)))
        ended.append(window_id)
    return ended


async def tick(session: AsyncSession) -> dict[str, Any]:
    """Periodic (worker/jobs.py): place late joiners' holds, send start notices, stamp ended windows.
    Cards are suspended and restored by time whether or not this runs."""
    placed = await start_due_windows(session)
    ended = await end_due_windows(session)
    return {"holds_placed": placed, "windows_ended": ended}
