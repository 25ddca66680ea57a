"""Distributors, the sponsor forest, cards and holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, LTree, created_at_column

RANKS = ("member", "silver", "gold", "platinum")


class Distributor(Base):
    __tablename__ = "distributor"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    """Referral code: short, from an alphabet without look-alike characters."""
    name: Mapped[str] = mapped_column(String(200))
    sponsor_id: Mapped[int | None] = mapped_column(ForeignKey("distributor.id"), index=True)
    depth: Mapped[int] = mapped_column(SmallInteger)
    """0 for a root; equals nlevel(path) - 1."""
    path: Mapped[str] = mapped_column(LTree)
    """Ids from the root down to this distributor: whole-downline queries are ``path <@ p``."""
    rank: Mapped[str] = mapped_column(String(16), server_default="member")
    rank_since: Mapped[datetime | None]
    """When the current rank was reached (NULL: held since joining); benefits follow it at once."""
    region: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    joined_at: Mapped[datetime] = created_at_column()
    closed_at: Mapped[datetime | None]
    erase_after: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    device_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    device_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    ip_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    ip_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    payment_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    payment_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_verified_at: Mapped[datetime | None]
    """When the phone on file was confirmed by a one-time code; SMS goes only to a verified phone."""
    email_verified_at: Mapped[datetime | None]
    locale: Mapped[str] = mapped_column(String(8), server_default="zh")
    """Language of notices: ``zh`` or ``en``."""
    closure_reason: Mapped[str | None] = mapped_column(String(32))
    closure_note: Mapped[str | None] = mapped_column(Text)
    closure_requested_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("rank IN ('member','silver','gold','platinum')", name="rank"),
        CheckConstraint("status IN ('active','closing','closed','erased')", name="status"),
        CheckConstraint("locale IN ('zh','en')", name="locale"),
        CheckConstraint("depth = nlevel(path) - 1", name="depth_matches_path"),
        Index("ix_distributor_phone_hash", "phone_hash"),
        Index("ix_distributor_device_hash", "device_hash"),
        Index("ix_distributor_ip_hash", "ip_hash"),
        Index("ix_distributor_payment_hash", "payment_hash"),
        Index("ix_distributor_email_hash", "email_hash"),
        Index("ix_distributor_region", "region"),
    )


class DistributorUpline(Base):
    """Bounded closure table: the nearest ancestors (level 1 = sponsor) up to the platform cap.

    Commission attribution joins orders to this table, set-based, without recursion.
    """

    __tablename__ = "distributor_upline"
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    ancestor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))

    __table_args__ = (Index("ix_distributor_upline_ancestor", "ancestor_id", "level"),)


class DistributorClosure(Base):
    """Full closure of the sponsor forest: one row per (ancestor, descendant), depth >= 1.

    The primary key order (ancestor, depth, descendant) makes a downline page and per-level team
    counts an index range scan, already in (level, id) order, however large the team."""

    __tablename__ = "distributor_closure"
    ancestor_id: Mapped[int] = mapped_column(primary_key=True)
    depth: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    descendant_id: Mapped[int] = mapped_column(primary_key=True)

    __table_args__ = (Index("ix_distributor_closure_descendant", "descendant_id", "depth"),)


class TeamLevel(Base):
    """A team per level: for each (ancestor, depth) the members there and their net sales (completed
    order amounts net of refunds), what team stats answers without counting the closure.

    Writers never touch this table: statement triggers on ``distributor_closure`` and ``orders``
    (migrations/sql/distnet_team_closure, distnet_team_orders) append to ``team_level_delta``, so
    concurrent registrations and orders never wait on an ancestor's row; readers sum both
    (``network.repository.team_stats``) and ``network.repository.fold_team`` moves the deltas here.
    ``network.checks`` compares it with a recount."""

    __tablename__ = "team_level"
    ancestor_id: Mapped[int] = mapped_column(primary_key=True)
    depth: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    members: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    sales: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


team_level_delta = Table(
    # appended by the closure and orders triggers, folded into team_level; no key, rows repeat
    "team_level_delta",
    Base.metadata,
    Column("ancestor_id", BigInteger, nullable=False),
    Column("depth", SmallInteger, nullable=False),
    Column("members", BigInteger, nullable=False, server_default=text("0")),
    Column("sales", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_team_level_delta_ancestor", "ancestor_id", "depth"),
)


class Card(Base):
    """A distribution card. Its status is derived (see ``cards.service.card_status``), never stored."""

    __tablename__ = "card"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"), index=True)
    issued_at: Mapped[datetime] = created_at_column()
    frozen_at: Mapped[datetime | None]
    """Loss reported (挂失)."""
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("card.id"))

    __table_args__ = (
        # one live card per distributor
        Index(
            "uq_card_live_distributor",
            "distributor_id",
            unique=True,
            postgresql_where=text("cancelled_at IS NULL"),
        ),
    )


HOLD_REASONS = ("fake_promotion", "order_brushing", "unpaid_balance", "maintenance", "manual")
VIOLATION_REASONS = ("fake_promotion", "order_brushing", "unpaid_balance", "manual")


class Hold(Base):
    """A suspension (停卡). Active while not lifted and inside its time window; never a status field."""

    __tablename__ = "hold"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    card_id: Mapped[int] = mapped_column(ForeignKey("card.id"), index=True)
    """The card the hold is on; on replacement active holds move to the new card."""
    reason: Mapped[str] = mapped_column(String(32))
    source_type: Mapped[str] = mapped_column(String(16))
    """rule | window | actor"""
    rule_name: Mapped[str | None] = mapped_column(String(64))
    rule_version: Mapped[int | None]
    risk_case_id: Mapped[int | None]
    maintenance_window_id: Mapped[int | None]
    subject_key: Mapped[str] = mapped_column(String(200), server_default="")
    """What the hold is about (rule subject or window id): one active hold per card, rule and subject."""
    placed_by: Mapped[str | None] = mapped_column(String(200))
    placed_by_key_id: Mapped[int | None]
    note: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    """Kept for good, also after the hold is lifted."""
    started_at: Mapped[datetime] = created_at_column()
    ends_at: Mapped[datetime | None]
    """Maintenance holds end by time; a restore can never be missed because nothing must run."""
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(String(200))
    lift_note: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))
    appealable: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    forfeit_at: Mapped[datetime | None]
    """For a confirmed hold: when its withheld commissions are forfeited if no appeal is open."""
    money_settled_at: Mapped[datetime | None]
    """When this hold's withheld commissions were released or forfeited (exactly once)."""

    __table_args__ = (
        CheckConstraint(
            "reason IN ('fake_promotion','order_brushing','unpaid_balance','maintenance','manual')",
            name="reason",
        ),
        CheckConstraint("outcome IS NULL OR outcome IN ('cleared','confirmed')", name="outcome"),
        Index("ix_hold_distributor_active", "distributor_id", postgresql_where=text("lifted_at IS NULL")),
        Index(
            "uq_hold_active_subject",
            "distributor_id",
            "reason",
            text("coalesce(rule_name, '')"),
            "subject_key",
            unique=True,
            postgresql_where=text("lifted_at IS NULL"),
        ),
        # the circuit breaker counts a rule's automatic holds of the last hour
        Index(
            "ix_hold_rule_started", "rule_name", "started_at", postgresql_where=text("source_type = 'rule'")
        ),
        # a window's holds are stamped lifted (end job, cancel) by window id
        Index(
            "ix_hold_window",
            "maintenance_window_id",
            postgresql_where=text("maintenance_window_id IS NOT NULL"),
        ),
        # forfeit_due: confirmed holds whose money is not settled yet
        Index(
            "ix_hold_forfeit_due",
            "forfeit_at",
            postgresql_where=text("forfeit_at IS NOT NULL AND money_settled_at IS NULL"),
        ),
    )
