"""Rank ladders, benefit catalogues (both versioned and effective-dated), points lots and the
redemptions and adjustments that spend them (issue 18)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column


class RankLadder(Base):
    """A version of the rank thresholds. The newest version effective by a moment is the ladder
    then; with no version stored the built-in ladder (or ``DISTNET_RANK_LADDER``) applies."""

    __tablename__ = "rank_ladder"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    period_days: Mapped[int] = mapped_column(Integer)
    ranks: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    min_personal: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    """Per rank (same order as ``ranks``), minor units of own sales over the period."""
    min_team: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    effective_from: Mapped[datetime]
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("period_days > 0", name="period_days"),
        Index("ix_rank_ladder_effective", "effective_from", "version"),
    )


class BenefitCatalogue(Base):
    """A version of the member benefits per rank (seed 004), effective from a moment on."""

    __tablename__ = "benefit_catalogue"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[datetime]
    point_value_minor: Mapped[int] = mapped_column(server_default=text("1"))
    """What one point is worth in minor units of the default currency (liability, purchases)."""
    referral_min_order: Mapped[int] = mapped_column(server_default=text("0"))
    """A recruit's first order of at least this amount earns the sponsor its referral points."""
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_benefit_catalogue_effective", "effective_from", "version"),)


class BenefitTier(Base):
    """What one rank gets under one catalogue version."""

    __tablename__ = "benefit_tier"
    catalogue_id: Mapped[int] = mapped_column(ForeignKey("benefit_catalogue.id"), primary_key=True)
    rank: Mapped[str] = mapped_column(String(16), primary_key=True)
    discount_bps: Mapped[int] = mapped_column(Integer)
    """Member discount on every category not listed in ``category_discounts`` (1000 = 9折)."""
    category_discounts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    """``{category: bps}``: a category's own discount (0 = none for that category)."""
    monthly_points: Mapped[int]
    earn_rate_bps: Mapped[int] = mapped_column(Integer)
    """Points per 1.00 of the amount paid on own orders, in basis points (10000 = 1 point)."""
    referral_points: Mapped[int]
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    """Named benefits without an amount: ``priority_service``, ``free_shipping``, ..."""

    __table_args__ = (
        CheckConstraint("discount_bps BETWEEN 0 AND 10000", name="discount_bps"),
        CheckConstraint("monthly_points >= 0 AND referral_points >= 0 AND earn_rate_bps >= 0", name="points"),
    )


POINT_SOURCES = ("order", "referral", "monthly", "adjustment")


class PointsLot(Base):
    """Points earned together: spent, expired and reversed first-in first-out by ``expires_at``.
    ``remaining`` is what is left of them; the sum of a member's ``remaining`` is its ``points``
    account balance (ledger verify)."""

    __tablename__ = "points_lot"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(64))
    """Order id, recruit id, ``YYYY-MM`` of a monthly grant, adjustment id: one lot per source."""
    order_id: Mapped[int | None]
    amount: Mapped[int]
    remaining: Mapped[int]
    netted: Mapped[int] = mapped_column(server_default=text("0"))
    """Part of ``amount`` that paid a points debt when earned (never spendable)."""
    reversed: Mapped[int] = mapped_column(server_default=text("0"))
    """Taken back by refunds of its order."""
    earned_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime]
    expired: Mapped[int] = mapped_column(server_default=text("0"))

    __table_args__ = (
        UniqueConstraint("distributor_id", "source", "source_ref"),
        CheckConstraint("source IN ('order','referral','monthly','adjustment')", name="source"),
        CheckConstraint("amount > 0 AND remaining >= 0 AND remaining <= amount", name="remaining_bounded"),
        Index(
            "ix_points_lot_open", "distributor_id", "expires_at", "id", postgresql_where=text("remaining > 0")
        ),
        Index("ix_points_lot_due", "expires_at", postgresql_where=text("remaining > 0")),
        Index("ix_points_lot_order", "order_id", postgresql_where=text("order_id IS NOT NULL")),
    )


class PointsSpend(Base):
    """Points taken out of lots by a member's redemption or an admin's negative adjustment."""

    __tablename__ = "points_spend"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    kind: Mapped[str] = mapped_column(String(16))
    """redemption | adjustment"""
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[bytes] = mapped_column(LargeBinary)
    points: Mapped[int]
    purpose: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(200))
    transaction_id: Mapped[int | None]
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("distributor_id", "kind", "idempotency_key"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("kind IN ('redemption','adjustment')", name="kind"),
    )


class PointsLotUse(Base):
    """Which lots a spend consumed, and how much of each."""

    __tablename__ = "points_lot_use"
    spend_id: Mapped[int] = mapped_column(ForeignKey("points_spend.id"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("points_lot.id"), primary_key=True)
    points: Mapped[int]


__all__ = [
    "RankLadder",
    "BenefitCatalogue",
    "BenefitTier",
    "PointsLot",
    "PointsSpend",
    "PointsLotUse",
    "POINT_SOURCES",
]
