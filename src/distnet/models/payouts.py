"""Settlement runs, payout runs and items, repayments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column


class SettlementRun(Base):
    __tablename__ = "settlement_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    partitions: Mapped[int] = mapped_column(server_default=text("1"))
    partitions_done: Mapped[int] = mapped_column(server_default=text("0"))
    moved: Mapped[int] = mapped_column(server_default=text("0"))
    amount: Mapped[int] = mapped_column(server_default=text("0"))
    started_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None]
    triggered_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        # at most one run in progress: a second trigger joins (or resumes) it instead of racing it
        Index(
            "uq_settlement_run_running", "status", unique=True, postgresql_where=text("status = 'running'")
        ),
    )


class SettlementPartition(Base):
    """One slice of a settlement run: the beneficiaries with ids in ``[lo, hi]``. A partition is
    processed in one transaction that also marks it done, so a killed worker leaves it pending."""

    __tablename__ = "settlement_partition"
    run_id: Mapped[int] = mapped_column(ForeignKey("settlement_run.id"), primary_key=True)
    partition_no: Mapped[int] = mapped_column(primary_key=True)
    lo: Mapped[int]
    hi: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    moved: Mapped[int] = mapped_column(server_default=text("0"))
    """Commissions made available."""
    withheld: Mapped[int] = mapped_column(server_default=text("0"))
    """Commissions withheld because their beneficiary is under a violation hold."""
    amount: Mapped[int] = mapped_column(server_default=text("0"))
    """Money moved out of pending into available (including the part netted against debt)."""
    netted: Mapped[int] = mapped_column(server_default=text("0"))
    finished_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("status IN ('pending','done')", name="status"),)


class PayoutRun(Base):
    __tablename__ = "payout_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    min_amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    note: Mapped[str | None] = mapped_column(Text)
    cutoff: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    created_by_key_id: Mapped[int | None]
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_by_key_id: Mapped[int | None]
    item_count: Mapped[int] = mapped_column(server_default=text("0"))
    total_amount: Mapped[int] = mapped_column(server_default=text("0"))
    created_at: Mapped[datetime] = created_at_column()
    approved_at: Mapped[datetime | None]
    exported_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("status IN ('draft','approved','exported','completed','cancelled')", name="status"),
    )


class PayoutItem(Base):
    __tablename__ = "payout_item"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("payout_run.id"))
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    status: Mapped[str] = mapped_column(String(16), server_default="reserved")
    bank_reference: Mapped[str | None] = mapped_column(String(128))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    result_at: Mapped[datetime | None]
    tax: Mapped[int] = mapped_column(server_default=text("0"))
    """Income tax withheld from ``amount`` (the gross); the net paid is ``amount - tax``."""
    tax_month: Mapped[date | None] = mapped_column(Date)
    """First day of the payment month (the run's cutoff month in the business time zone)."""
    tax_table_id: Mapped[int | None] = mapped_column(ForeignKey("tax_table.id"))
    payout_account_id: Mapped[int | None] = mapped_column(ForeignKey("payout_account.id"))
    """The payout account version the item is paid to."""
    final_payout: Mapped[bool] = mapped_column(server_default=text("false"))
    """The final payout of a closing account: the closure completes when it is paid."""
    returned_at: Mapped[datetime | None]
    return_reference: Mapped[str | None] = mapped_column(String(128))
    return_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("run_id", "distributor_id"),
        CheckConstraint("status IN ('reserved','paid','failed','cancelled','returned')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("tax BETWEEN 0 AND amount", name="tax_bounded"),
        Index("ix_payout_item_tax_month", "tax_month", "distributor_id"),
        Index("ix_payout_item_run", "run_id", "id"),
        Index("ix_payout_item_distributor", "distributor_id"),
        Index("ix_payout_item_reserved", "distributor_id", postgresql_where=text("status = 'reserved'")),
    )


class PayoutItemCommission(Base):
    """Which commissions a payout item reserved, and how much of the item each carries (they sum
    to the item's amount). A paid result marks exactly these ``paid``; a failed result or a
    cancellation returns exactly these to ``available``. A commission's latest row (highest
    ``item_id``) is its current reservation or the item that paid it. An item reserves all of its
    distributor's available commissions, oldest first: the amounts follow the commissions' net
    until the item's amount is reached (money netted against debt leaves later ones at 0) and the
    newest carries any rest (money returned by a failed item after a clawback was repaid).
    No foreign keys (like the other fact tables, migration 0005); ``ledger verify`` checks them."""

    __tablename__ = "payout_item_commission"
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    commission_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        Index("ix_payout_item_commission_commission", "commission_id", "item_id"),
    )


class Repayment(Base):
    __tablename__ = "repayment"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    amount: Mapped[int]
    applied: Mapped[int] = mapped_column(server_default=text("0"))
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_repayment_distributor", "distributor_id", "id"),
    )


__all__ = [
    "SettlementRun",
    "SettlementPartition",
    "PayoutRun",
    "PayoutItem",
    "PayoutItemCommission",
    "Repayment",
    "JSONB",
    "Any",
]
