"""The one notification service every domain uses.

``notify(session, distributor_id=, event_key=, kind=, params=)`` writes the notice for one
distributor; ``notify_many(session, recipients=SQL, ...)`` fans one notice out to any number of
distributors in ONE ``INSERT … SELECT`` (a maintenance window's whole scope). Each writes at most
one row per (event, recipient, channel) (``uq_notification_event_recipient_channel``), so a
redelivered event notifies nobody twice. Both run in the caller's transaction and never commit.

Channels: the inbox always (``GET /api/v1/me/notifications``); e-mail to a verified address unless
the distributor turned e-mail off or muted the kind; SMS to a verified phone only with an active
``sms`` consent. E-mail and SMS rows are ``pending`` until the ``notifications.send`` actor sends
them (``deliver``), with retries, and records ``sent`` / ``failed`` and the reason. The
``notifications_send`` job queues pending rows every few seconds. Texts are rendered from
``kind`` + ``params`` in the distributor's locale (templates.py) when read or sent.

Kinds are the keys of ``templates.TEMPLATES``; params are the event's facts (amounts in minor
units or "12.34", ISO times, reason codes), put into words by the template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import rowcount
from distnet.kit.crypto import decrypt, encrypt
from distnet.kit.errors import ValidationFailed
from distnet.kit.pagination import check_limit, decode_cursor, encode_cursor
from distnet.kit.ratelimit import RateLimiter
from distnet.notifications import repository as repo
from distnet.notifications.channels import Outgoing, SendFailed, provider_for, rate_per_minute
from distnet.notifications.errors import NotificationNotFound
from distnet.notifications.schemas import PreferencesView
from distnet.notifications.templates import MANDATORY_KINDS, TEMPLATES, render
from distnet.settings import Settings

MAX_ATTEMPTS = 5
"""Sends of one e-mail or SMS before it is recorded ``failed``."""
REQUEUE_AFTER_MINUTES = 30


def _payload(kind: str, params: dict[str, Any]) -> str:
    if kind not in TEMPLATES:
        raise ValueError(f"unknown notification kind {kind!r}")
    return json.dumps(params, default=str)


async def notify(
    session: AsyncSession, *, distributor_id: int, event_key: object, kind: str, params: dict[str, Any]
) -> int:
    """Notify one distributor on every channel they allow. Returns the rows written (0 when the
    event was already notified)."""
    return await repo.fan_out(
        session,
        recipients="SELECT CAST(:recipient AS bigint)",
        params={"recipient": distributor_id},
        event_key=str(event_key),
        kind=kind,
        payload=_payload(kind, params),
    )


async def notify_many(
    session: AsyncSession,
    *,
    recipients: str,
    recipient_params: dict[str, Any],
    event_key: object,
    kind: str,
    params: dict[str, Any],
) -> int:
    """Notify every distributor selected by the SQL ``recipients`` (a ``SELECT`` of distributor
    ids, bound with ``recipient_params``) in one statement."""
    return await repo.fan_out(
        session,
        recipients=recipients,
        params=recipient_params,
        event_key=str(event_key),
        kind=kind,
        payload=_payload(kind, params),
    )


async def send_secret(
    session: AsyncSession,
    *,
    settings: Settings,
    distributor_id: int,
    event_key: str,
    kind: str,
    channel: str,
    secret: str,
    destination: str | None,
    params: dict[str, Any],
) -> None:
    """A one-time code: one row on exactly ``channel`` (preferences do not apply: the distributor
    asked for it), to ``destination`` when it is not the address on file. The code is kept
    encrypted until it is sent, then erased."""
    sent = channel == "inbox"
    await session.execute(
        repo.INSERT_SECRET_NOTICE,
        {
            "d": distributor_id,
            "key": event_key,
            "kind": kind,
            "channel": channel,
            "params": _payload(kind, params),
            "secret": encrypt(settings.secret_key, secret),
            "dest": encrypt(settings.secret_key, destination),
            "status": "sent" if sent else "pending",
            "sent": sent,
        },
    )


async def forget_secrets(session: AsyncSession, *, event_key: str) -> None:
    """A code that was used or replaced: its copies in the inbox are erased too."""
    await session.execute(repo.FORGET_SECRETS, {"k": event_key})


PREVIOUS_CONTACT_NOTICE_DAYS = 30
"""A phone or e-mail replaced within this many days still gets the security notices
(``notify_previous_contacts``): an attacker who changed the contact can wait out the payout
cooling-off (72 h) before changing the payout account, not a month unnoticed."""


async def notify_previous_contacts(
    session: AsyncSession,
    *,
    distributor_id: int,
    event_key: object,
    kind: str,
    params: dict[str, Any],
    previous_contact_id: int | None = None,
) -> int:
    """A security notice to the addresses a confirmed change replaced (``previous_contact``): the
    one given by id, or each replaced within ``PREVIOUS_CONTACT_NOTICE_DAYS`` that is not current
    again, once per address. Preferences do not apply (whoever changed the contact could also have
    turned e-mail off); the address goes in ``destination_enc``, the params hold masked values only."""
    result = await session.execute(
        repo.NOTIFY_PREVIOUS_CONTACTS,
        {
            "d": distributor_id,
            "key": str(event_key),
            "kind": kind,
            "params": _payload(kind, params),
            "only": previous_contact_id,
            "days": PREVIOUS_CONTACT_NOTICE_DAYS,
        },
    )
    return rowcount(result)


# --------------------------------------------------------------------------- inbox


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    kind: str
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None


async def _locale(session: AsyncSession, *, distributor_id: int) -> str:
    return await session.scalar(repo.LOCALE, {"d": distributor_id}) or "zh"


def _render_row(settings: Settings, locale: str, row: dict[str, Any]) -> tuple[str, str]:
    if row["redacted_at"] is not None:
        return (
            ("已删除", "内容已按个人信息删除要求清除。")
            if locale == "zh"
            else ("Erased", "The content was erased with the account's personal data.")
        )
    params = dict(row["params"] or {})
    if row.get("secret_enc") is not None:
        params["code"] = decrypt(settings.secret_key, row["secret_enc"])
    elif row["kind"] == "verification_code":
        params["code"] = "******"
    return render(row["kind"], locale, params)


def render_notice(settings: Settings, locale: str, row: dict[str, Any]) -> tuple[str, str]:
    """A stored notice in words (``kind``, ``params``, ``redacted_at``, ``secret_enc``): what the
    inbox, the e-mail and the owner's data export show."""
    return _render_row(settings, locale, row)


async def inbox(
    session: AsyncSession,
    *,
    settings: Settings,
    distributor_id: int,
    cursor: str | None,
    limit: int | None,
    unread_only: bool = False,
) -> tuple[list[InboxItem], int, str | None]:
    """Newest first; returns (items, unread count, next cursor)."""
    limit = check_limit(limit)
    after = decode_cursor(cursor, 1)
    if after is not None and not isinstance(after[0], int):
        raise ValidationFailed("cursor is not valid", field="cursor")
    rows = await repo.inbox_page(
        session,
        distributor_id,
        before_id=after[0] if after else None,
        limit=limit + 1,
        unread_only=unread_only,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    locale = await _locale(session, distributor_id=distributor_id)
    items = []
    for row in rows:
        subject, body = _render_row(settings, locale, row)
        items.append(InboxItem(row["id"], row["kind"], subject, body, row["created_at"], row["read_at"]))
    unread = await repo.unread_count(session, distributor_id)
    return items, unread, encode_cursor(rows[-1]["id"]) if more else None


async def mark_read(session: AsyncSession, *, distributor_id: int, notification_id: int) -> int:
    """Mark one inbox notice read (idempotent); another distributor's notice is not found (404).
    Returns the unread count after."""
    if not await repo.mark_read(session, distributor_id, notification_id):
        raise NotificationNotFound(f"no notification {notification_id}")
    return await repo.unread_count(session, distributor_id)


# --------------------------------------------------------------------------- preferences


@dataclass(frozen=True, slots=True)
class Preferences:
    email_enabled: bool
    sms_enabled: bool
    muted_kinds: list[str]


def check_mutable(kinds: list[str]) -> None:
    """422 naming ``muted_kinds`` for an unknown kind or a mandatory one (security, legal)."""
    unknown = sorted({k for k in kinds if k not in TEMPLATES})
    mandatory = sorted({k for k in kinds if k in MANDATORY_KINDS})
    errors = (
        [{"field": "muted_kinds", "message": f"unknown kinds {unknown}; kinds are {sorted(TEMPLATES)}"}]
        if unknown
        else []
    )
    errors += (
        [
            {
                "field": "muted_kinds",
                "message": f"{mandatory} are security or legal notices and cannot be muted",
            }
        ]
        if mandatory
        else []
    )
    if errors:
        raise ValidationFailed("; ".join(e["message"] for e in errors), errors=errors)


async def get_preferences(session: AsyncSession, *, distributor_id: int) -> Preferences:
    row = (await session.execute(repo.PREFERENCES, {"d": distributor_id})).first()
    return Preferences(True, True, []) if row is None else Preferences(row[0], row[1], list(row[2]))


async def set_preferences(
    session: AsyncSession,
    *,
    distributor_id: int,
    email_enabled: bool | None = None,
    sms_enabled: bool | None = None,
    muted_kinds: list[str] | None = None,
) -> Preferences:
    current = await get_preferences(session, distributor_id=distributor_id)
    new = Preferences(
        current.email_enabled if email_enabled is None else email_enabled,
        current.sms_enabled if sms_enabled is None else sms_enabled,
        current.muted_kinds if muted_kinds is None else sorted(set(muted_kinds)),
    )
    await session.execute(
        repo.UPSERT_PREFERENCES,
        {"d": distributor_id, "e": new.email_enabled, "s": new.sms_enabled, "m": new.muted_kinds},
    )
    return new


async def preferences_view(session: AsyncSession, *, distributor_id: int) -> PreferencesView:
    prefs = await get_preferences(session, distributor_id=distributor_id)
    row = (await session.execute(repo.CONTACT_STATE, {"d": distributor_id})).one()
    return PreferencesView(
        prefs.email_enabled,
        prefs.sms_enabled,
        prefs.muted_kinds,
        row[0],
        row[1],
        row[2],
        sorted(set(TEMPLATES) - MANDATORY_KINDS),
        sorted(MANDATORY_KINDS),
    )


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class Delivery:
    status: str
    """sent | failed | skipped | retry | wait | done (nothing to do)"""
    reason: str | None = None
    wait_s: float | None = None


async def _finish(
    session: AsyncSession,
    *,
    notification_id: int,
    status: str,
    provider: str | None,
    reason: str | None,
    attempted: bool,
) -> None:
    await session.execute(
        repo.FINISH_DELIVERY,
        {
            "id": notification_id,
            "status": status,
            "provider": provider,
            "reason": reason,
            "attempted": attempted,
        },
    )


async def deliver(
    session: AsyncSession, *, settings: Settings, notification_id: int, limiter: RateLimiter | None = None
) -> Delivery:
    """Send one pending e-mail or SMS and record the outcome in this transaction (the actor
    commits, then retries when told ``retry``). The row stays locked while it is sent, so two
    deliveries of one notice never both send it."""
    row = (await session.execute(repo.LOAD_FOR_DELIVERY, {"id": notification_id})).mappings().first()
    if row is None or row["status"] != "pending":
        return Delivery("done")
    channel = row["channel"]
    address_enc = row["destination_enc"] or (row["email_enc"] if channel == "email" else row["phone_enc"])
    if row["redacted_at"] is not None or row["distributor_status"] == "erased" or address_enc is None:
        reason = f"no verified {'e-mail address' if channel == 'email' else 'phone'}"
        await _finish(
            session,
            notification_id=notification_id,
            status="skipped",
            provider=None,
            reason=reason,
            attempted=False,
        )
        return Delivery("skipped", reason)
    provider = provider_for(channel, settings.notify)
    if limiter is not None:
        wait = await limiter.take(provider.name, rate_per_minute(channel, settings.notify))
        if wait is not None:
            return Delivery("wait", f"{provider.name} rate limit", wait)
    subject, body = _render_row(settings, row["locale"], dict(row))
    try:
        await provider.send(Outgoing(decrypt(settings.secret_key, address_enc) or "", subject, body))
    except SendFailed as exc:
        final = exc.permanent or row["attempts"] + 1 >= MAX_ATTEMPTS
        await _finish(
            session,
            notification_id=notification_id,
            status="failed" if final else "pending",
            provider=provider.name,
            reason=exc.reason[:1000],
            attempted=True,
        )
        return Delivery("failed" if final else "retry", exc.reason)
    await _finish(
        session,
        notification_id=notification_id,
        status="sent",
        provider=provider.name,
        reason=None,
        attempted=True,
    )
    return Delivery("sent")


async def claim_due(session: AsyncSession, *, limit: int = 1000) -> list[int]:
    """Pending deliveries to queue now (the job ``notifications_send`` sends them to the actor)."""
    return await repo.claim_due(session, limit=limit, stale_minutes=REQUEUE_AFTER_MINUTES)


async def redact(session: AsyncSession, *, distributor_ids: str, params: dict[str, Any]) -> int:
    """Erasure: every notice of the selected distributors loses its parameters, codes and
    addresses; the rows stay as the fact that a notice was sent."""
    result = await session.execute(repo.redact(distributor_ids), params)
    return rowcount(result)


def now_utc() -> datetime:
    return datetime.now(UTC)
