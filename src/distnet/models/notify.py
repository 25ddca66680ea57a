"""Notifications, one-time codes and consents: the shared services every domain uses to reach
a distributor and to confirm that the distributor is the one asking."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column

CHANNELS = ("inbox", "email", "sms")
DELIVERY_STATUSES = ("pending", "sent", "failed", "skipped")
CONSENT_PURPOSES = ("terms", "privacy", "marketing", "sms")
CODE_PURPOSES = ("closure", "contact_phone", "contact_email", "payout_account", "key_recovery")


class Notification(Base):
    """One notice to one distributor on one channel. ``channel = 'inbox'`` rows are the inbox;
    e-mail and SMS rows are deliveries a worker sends and records. The text is rendered from
    ``kind``, ``params`` and the recipient's locale when read or sent, so one set-based INSERT can
    fan a notice out to a whole maintenance scope."""

    __tablename__ = "notification"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    event_key: Mapped[str] = mapped_column(String(100))
    """The event this notice is about (an outbox event id, or ``code:<id>`` for a one-time code):
    a redelivered event inserts nothing twice."""
    kind: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """A one-time code, encrypted, until it is sent (then erased): only its hash is kept elsewhere."""
    destination_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """An address that is not (yet) the distributor's verified one: a code to confirm it."""
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    queued_at: Mapped[datetime | None]
    """When a send message was queued; a delivery still pending long after is queued again."""
    sent_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    redacted_at: Mapped[datetime | None]
    """Erasure: params and addresses removed, the notice kept as a fact that it was sent."""

    __table_args__ = (
        UniqueConstraint(
            "event_key", "distributor_id", "channel", name="uq_notification_event_recipient_channel"
        ),
        CheckConstraint("channel IN ('inbox','email','sms')", name="channel"),
        CheckConstraint("status IN ('pending','sent','failed','skipped')", name="status"),
        Index("ix_notification_inbox", "distributor_id", "channel", "id"),
        Index("ix_notification_pending", "id", postgresql_where=text("status = 'pending'")),
    )


class NotificationPreference(Base):
    """A distributor's choices; no row means the defaults (e-mail on, SMS on once consented)."""

    __tablename__ = "notification_preference"
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"), primary_key=True)
    email_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    sms_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    muted_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default=text("'{}'"))
    """Kinds sent to the inbox only (never e-mail or SMS)."""
    updated_at: Mapped[datetime] = created_at_column()


class VerificationCode(Base):
    """A one-time code (6 digits, 10 minutes, 5 attempts). Only a keyed hash is stored."""

    __tablename__ = "verification_code"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    destination_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The address the code went to (a new phone or e-mail is confirmed by it)."""
    code_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    locked_until: Mapped[datetime | None]
    """Set at the last allowed wrong attempt: no code for this purpose until then."""
    used_at: Mapped[datetime | None]
    superseded_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("channel IN ('inbox','email','sms')", name="channel"),
        Index("ix_verification_code_owner", "distributor_id", "purpose", "id"),
    )


class PreviousContact(Base):
    """A verified phone or e-mail that a confirmed new one replaced, kept encrypted with the time
    it was replaced: security notices (the contact change itself, a payout account change during
    ``PREVIOUS_CONTACT_NOTICE_DAYS``) also reach it, so the real owner hears of a takeover. Erased
    with the account."""

    __tablename__ = "previous_contact"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    channel: Mapped[str] = mapped_column(String(8))
    """``email`` or ``sms`` (the notification channel the address is reached on)."""
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Keyed hash (as ``distributor.email_hash`` / ``phone_hash``): an address that is current again is not
    notified twice."""
    replaced_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint("channel IN ('email','sms')", name="channel"),
        Index("ix_previous_contact_owner", "distributor_id", "replaced_at"),
    )


class Consent(Base):
    """A consent given (and maybe withdrawn): which document version, when, through which channel."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    purpose: Mapped[str] = mapped_column(String(32))
    document_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime] = created_at_column()
    withdrawn_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("purpose IN ('terms','privacy','marketing','sms')", name="purpose"),
        Index("ix_consent_distributor", "distributor_id", "purpose"),
    )
