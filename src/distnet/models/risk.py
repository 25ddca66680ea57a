"""Risk rules, scans, cases, maintenance windows, appeals, webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column


class RiskRule(Base):
    __tablename__ = "risk_rule"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(server_default=text("1"))
    updated_at: Mapped[datetime] = created_at_column()
    updated_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (CheckConstraint("mode IN ('off','shadow','review','enforce')", name="mode"),)


class RiskRuleVersion(Base):
    __tablename__ = "risk_rule_version"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))


class RiskScan(Base):
    __tablename__ = "risk_scan"
    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None]
    cases_opened: Mapped[int] = mapped_column(server_default=text("0"))
    holds_placed: Mapped[int] = mapped_column(server_default=text("0"))
    triggered_by: Mapped[str | None] = mapped_column(String(200))
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class RiskCase(Base):
    __tablename__ = "risk_case"
    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int]
    reason: Mapped[str] = mapped_column(String(32))
    score: Mapped[float]
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    subject_key: Mapped[str] = mapped_column(String(200))
    """Stable fingerprint of the finding: repeated scans never duplicate a case."""
    anchor: Mapped[str | None] = mapped_column(String(200))
    """What the finding is about regardless of its exact evidence (``card:12``, ``sponsor:7``): while
    an open case or an active hold exists for a rule and anchor, growing evidence opens no new case."""
    subject: Mapped[dict[str, Any]] = mapped_column(JSONB)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB)
    action: Mapped[str] = mapped_column(String(32))
    """recorded (shadow) | review | hold | review_breaker (breaker tripped)"""
    scan_id: Mapped[int | None]
    created_at: Mapped[datetime] = created_at_column()
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("rule", "subject_key"),
        Index("ix_risk_case_status", "status", "id"),
        Index("ix_risk_case_rule_anchor", "rule", "anchor", postgresql_where=text("status = 'open'")),
    )


class MaintenanceWindow(Base):
    __tablename__ = "maintenance_window"
    id: Mapped[int] = mapped_column(primary_key=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    scope: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    message: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
    announced_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    """When its holds were placed (exactly once)."""
    ended_at: Mapped[datetime | None]
    """When its holds were marked lifted (exactly once)."""
    cancelled_at: Mapped[datetime | None]
    emergency: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """Announced with less than the minimum notice (DISTNET_MAINTENANCE_MIN_NOTICE_HOURS)."""
    emergency_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window_order"),
        CheckConstraint("NOT emergency OR emergency_reason IS NOT NULL", name="emergency_reason"),
    )


class Appeal(Base):
    __tablename__ = "appeal"
    id: Mapped[int] = mapped_column(primary_key=True)
    hold_id: Mapped[int] = mapped_column(ForeignKey("hold.id"))
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    statement: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), server_default="submitted")
    submission_no: Mapped[int] = mapped_column(server_default=text("1"))
    assignee: Mapped[str | None] = mapped_column(String(200))
    assignee_key_id: Mapped[int | None]
    claimed_at: Mapped[datetime | None]
    escalated: Mapped[bool] = mapped_column(server_default=text("false"))
    due_at: Mapped[datetime]
    paused_at: Mapped[datetime | None]
    """SLA clock paused while information is requested."""
    created_at: Mapped[datetime] = created_at_column()
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(
            "status IN ('submitted','in_review','info_requested','escalated','approved','rejected')",
            name="status",
        ),
        # one open appeal per hold
        Index(
            "uq_appeal_open_hold",
            "hold_id",
            unique=True,
            postgresql_where=text("status NOT IN ('approved','rejected')"),
        ),
        Index("ix_appeal_queue", "status", "due_at"),
    )


class AppealEvent(Base):
    __tablename__ = "appeal_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeal.id"), index=True)
    at: Mapped[datetime] = created_at_column()
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoint"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))
    topics: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = created_at_column()


class ProcessedEvent(Base):
    """Consumers drop duplicates by event id (at-least-once delivery)."""

    __tablename__ = "processed_event"
    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = created_at_column()

    __table_args__ = (Index("ix_processed_event_processed_at", "processed_at"),)  # the prune job's batches


__all__ = ["ForeignKey"]
