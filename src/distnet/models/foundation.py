"""Keys, audit log, outbox, idempotency records: plumbing every domain uses."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, Boolean, Date, ForeignKey, Index, LargeBinary, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column


class Staff(Base):
    """A person on the platform's staff. Keys belong to a person: four eyes compares people, the
    audit log names them, and the console's second factor (TOTP) is theirs."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    disabled_at: Mapped[datetime | None]
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The TOTP seed, Fernet-encrypted; set when the person confirms enrolment with a first code."""
    totp_last_step: Mapped[int | None]
    """The last accepted TOTP time step: a code is accepted once (no replay within its 30 s)."""


class ApiKey(Base):
    __tablename__ = "api_key"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    """SHA-256 of the whole key: keys are 256-bit random, so a fast hash is safe and O(1) to check."""
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributor.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    """The person holding this staff key (None for distributor keys and legacy unnamed keys)."""
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None]


class BusinessDay(Base):
    """A day that differs from the Monday-Friday week in the platform's calendar: a public holiday
    (``working`` false) or a make-up working day on a weekend (调休, ``working`` true). Days not
    listed follow the week. Loaded per year by an admin (``distnet calendar load``)."""

    __tablename__ = "business_day"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(200))
    """Where the year's table comes from (the official notice)."""
    loaded_at: Mapped[datetime] = created_at_column()


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = created_at_column()
    actor_key_id: Mapped[int | None]
    actor_staff_id: Mapped[int | None]
    """The person who acted (their key may change; they do not)."""
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id", "id"),)


class OutboxEvent(Base):
    """Domain events written in the business transaction; a worker publishes them after commit."""

    __tablename__ = "outbox_event"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(unique=True, server_default=text("nextval('outbox_event_seq')"))
    topic: Mapped[str] = mapped_column(String(100))
    distributor_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    """The X-Request-ID of the request that wrote the event (or of the job, when a job wrote it):
    the relay puts it on the dramatiq message, and the worker's log lines for it carry it."""

    __table_args__ = (
        Index("ix_outbox_event_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )


class IdempotencyRecord(Base):
    """First response to a money-moving POST, replayed for the same key and body."""

    __tablename__ = "idempotency_record"
    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
