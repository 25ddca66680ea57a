"""Payout accounts (where a distributor's money goes), the tax table, tax identities kept for the
tax authority, and the distributors a payout run skipped (with why)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, CheckConstraint, Date, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column

PAYOUT_METHODS = ("bank_card", "alipay", "wechat")


class PayoutAccount(Base):
    """One version of a distributor's payout account. A change supersedes the current version and
    inserts a new one, so a payout item names the exact version it was paid to."""

    __tablename__ = "payout_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"))
    method: Mapped[str] = mapped_column(String(16))
    holder_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    account_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    account_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Keyed hash: one account shared by several distributors is a risk signal."""
    account_last4: Mapped[str | None] = mapped_column(String(4))
    """The only part of the number any response shows (NULL for an unconfirmed migrated account)."""
    bank_name: Mapped[str | None] = mapped_column(String(100))
    bank_branch: Mapped[str | None] = mapped_column(String(200))
    resident_id_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    resident_id_last4: Mapped[str | None] = mapped_column(String(4))
    status: Mapped[str] = mapped_column(String(24), server_default="active")
    """active | needs_confirmation (moved from registration's bank_account, never checked) |
    superseded | erased"""
    cooling_until: Mapped[datetime]
    """Payouts to this version are skipped until then (account takeover: the owner gets time to react)."""
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))
    superseded_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("method IN ('bank_card','alipay','wechat')", name="method"),
        CheckConstraint("status IN ('active','needs_confirmation','superseded','erased')", name="status"),
        # one current version per distributor
        Index(
            "uq_payout_account_current",
            "distributor_id",
            unique=True,
            postgresql_where=text("superseded_at IS NULL"),
        ),
        Index("ix_payout_account_distributor", "distributor_id", "id"),
        Index("ix_payout_account_hash", "account_hash"),
    )


class TaxTable(Base):
    """A version of the withholding rules (``tax.rules``), effective from the first day of a month."""

    __tablename__ = "tax_table"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))


class TaxIdentity(Base):
    """What tax law requires to be kept about a payee (name, resident ID number), encrypted. It
    outlives the erasure of a closed account until ``retain_until``; only finance reads it."""

    __tablename__ = "tax_identity"
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributor.id"), primary_key=True)
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    resident_id_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = created_at_column()
    retain_until: Mapped[datetime | None]
    """Set when the account's personal data is erased: erasure date + DISTNET_TAX_RETENTION_YEARS."""


class PayoutSkip(Base):
    """A distributor at or above a run's minimum who got no item, and why."""

    __tablename__ = "payout_skip"
    run_id: Mapped[int] = mapped_column(ForeignKey("payout_run.id"), primary_key=True)
    distributor_id: Mapped[int] = mapped_column(primary_key=True)
    available: Mapped[int]
    reasons: Mapped[list[str]] = mapped_column(ARRAY(Text))


__all__ = ["PayoutAccount", "TaxTable", "TaxIdentity", "PayoutSkip", "PAYOUT_METHODS"]
