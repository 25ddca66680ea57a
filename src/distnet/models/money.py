"""Orders, refunds, commission plans, commissions and the double-entry ledger."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from distnet.models.base import Base, created_at_column


class CommissionPlan(Base):
    __tablename__ = "commission_plan"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(200))
    max_levels: Mapped[int] = mapped_column(SmallInteger)
    hold_days: Mapped[int] = mapped_column(SmallInteger)
    min_order_amount: Mapped[int]
    excluded_categories: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    effective_from: Mapped[datetime]
    created_at: Mapped[datetime] = created_at_column()
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint("max_levels BETWEEN 1 AND 10", name="max_levels"),
        # the plan in effect at an order's placed_at: the newest version effective by then
        Index("ix_commission_plan_effective", "effective_from", "version"),
    )


class CommissionRate(Base):
    __tablename__ = "commission_rate"
    plan_id: Mapped[int] = mapped_column(ForeignKey("commission_plan.id"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    rank: Mapped[str] = mapped_column(String(16), primary_key=True)
    """The beneficiary's rank at attribution time."""
    rate_bps: Mapped[int]

    __table_args__ = (CheckConstraint("rate_bps BETWEEN 0 AND 10000", name="rate_bps"),)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    body_hash: Mapped[bytes] = mapped_column(LargeBinary)
    """Hash of the canonical request body: the same id with a different body is a 409."""
    # orders and commissions carry no foreign keys (migration 0005: per-row checks and parent
    # locks cost half of every bulk insert); their parents are never deleted and ledger verify
    # checks every reference (fact_references)
    card_id: Mapped[int]
    seller_id: Mapped[int]
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    category: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    placed_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_at_column()
    refunded_amount: Mapped[int] = mapped_column(server_default=text("0"))
    buyer_ref_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    buyer_ref_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The buyer reference as the seller supplied it, encrypted (kit.crypto); NULL on orders stored
    before migration 0060, which are shown masked."""
    buyer_device_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    buyer_ip_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    buyer_payment_hash: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("refunded_amount BETWEEN 0 AND amount", name="refund_bounded"),
        Index("ix_orders_seller_placed", "seller_id", "placed_at"),
        Index("ix_orders_card_placed", "card_id", "placed_at"),
        Index("ix_orders_buyer_ref", "buyer_ref_hash"),
        Index("ix_orders_buyer_payment", "buyer_payment_hash"),
        # per-order cycle checks follow "bought with this distributor's device" edges
        Index(
            "ix_orders_buyer_device",
            "buyer_device_hash",
            postgresql_where=text("buyer_device_hash IS NOT NULL"),
        ),
    )


class Refund(Base):
    __tablename__ = "refund"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    amount: Mapped[int]
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        UniqueConstraint("order_id", "external_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


COMMISSION_STATUSES = ("pending", "available", "withheld", "reserved", "paid", "forfeited", "reversed")
"""``reserved``: in an open payout item (``payout_item_commission``), until its result."""


class Commission(Base):
    __tablename__ = "commission"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int]
    level: Mapped[int] = mapped_column(SmallInteger)
    beneficiary_id: Mapped[int]
    plan_id: Mapped[int]
    rank_used: Mapped[str] = mapped_column(String(16))
    rate_bps: Mapped[int]
    base: Mapped[int]
    amount: Mapped[int]
    """floor(base * rate_bps / 10000), fixed at attribution."""
    reversed: Mapped[int] = mapped_column(server_default=text("0"))
    """Sum of refund reversals so far; net = amount - reversed."""
    status: Mapped[str] = mapped_column(String(16))
    hold_until: Mapped[datetime]
    withheld_hold_id: Mapped[int | None]
    """The violation hold that withholds this commission, if any."""
    created_at: Mapped[datetime] = created_at_column()
    available_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("order_id", "level"),
        CheckConstraint(
            "status IN ('pending','available','withheld','reserved','paid','forfeited','reversed')",
            name="status",
        ),
        CheckConstraint("reversed BETWEEN 0 AND amount", name="reversed_bounded"),
        Index("ix_commission_beneficiary", "beneficiary_id", "id"),
        Index("ix_commission_pending_due", "hold_until", postgresql_where=text("status = 'pending'")),
        Index(
            "ix_commission_withheld_hold", "withheld_hold_id", postgresql_where=text("status = 'withheld'")
        ),
        # settlement partitions select due pending commissions by beneficiary range
        Index(
            "ix_commission_pending_beneficiary",
            "beneficiary_id",
            "hold_until",
            postgresql_where=text("status = 'pending'"),
        ),
        # a paid payout marks a distributor's available commissions up to the run's cutoff
        Index(
            "ix_commission_available_beneficiary",
            "beneficiary_id",
            "available_at",
            postgresql_where=text("status = 'available'"),
        ),
    )


ACCOUNT_KINDS = (
    # per distributor
    "pending",
    "available",
    "withheld",
    "reserved",
    "paid",
    "owed",
    # platform
    "commission_expense",
    "payout_clearing",
    "forfeited_income",
    "repayment_clearing",
    "tax_payable",
)


class LedgerAccount(Base):
    __tablename__ = "ledger_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributor.id"))
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3), server_default="CNY")
    balance: Mapped[int] = mapped_column(server_default=text("0"))
    """Maintained by a statement-level trigger on ledger_posting: always the sum of its postings."""

    __table_args__ = (
        Index(
            "uq_ledger_account_owner_kind",
            text("coalesce(distributor_id, 0)"),
            "kind",
            "currency",
            unique=True,
        ),
        # lookups by owner (balances, payouts, settlement) cannot use the coalesce() index above
        Index("ix_ledger_account_distributor", "distributor_id", "kind"),
    )


class LedgerTransaction(Base):
    __tablename__ = "ledger_transaction"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    ref_type: Mapped[str | None] = mapped_column(String(32))
    ref_id: Mapped[str | None] = mapped_column(String(64))
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (Index("ix_ledger_transaction_ref", "ref_type", "ref_id"),)


class LedgerPosting(Base):
    __tablename__ = "ledger_posting"
    id: Mapped[int] = mapped_column(primary_key=True)
    # no foreign keys (migration 0005): accounts and transactions are never deleted, and ledger
    # verify checks every reference (fact_references)
    transaction_id: Mapped[int] = mapped_column(index=True)
    account_id: Mapped[int]
    amount: Mapped[int]
    """Signed minor units; the postings of one transaction sum to zero."""
    commission_id: Mapped[int | None]
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        Index("ix_ledger_posting_account", "account_id", "id"),
        # the postings of one commission (explain, verify)
        Index(
            "ix_ledger_posting_commission",
            "commission_id",
            postgresql_where=text("commission_id IS NOT NULL"),
        ),
    )


ledger_balance_pending = Table(
    # Credits to distributors' pending/withheld accounts and every posting to the platform
    # commission_expense account are queued here by the ledger statement trigger (insert only, no
    # lock) and applied at commit by a deferred constraint trigger (migrations/sql/ledger.sql), so
    # concurrent orders sharing a beneficiary do not wait for each other. Rows never outlive their
    # transaction. Written only by triggers, so a Core table rather than a mapped class.
    "ledger_balance_pending",
    Base.metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("account_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    # the first row a posting statement queues: only a head row queues the deferred apply (0170)
    Column("head", Boolean, nullable=False, server_default=false()),
)


class SalesDaily(Base):
    """Sales per distributor and business day (``distnet_local_day``: DISTNET_TIME_ZONE), net of refunds, for rank thresholds over a trailing period.

    ``personal`` counts the distributor's own orders; ``team`` its whole downline's (every level),
    credited to the ancestors the seller had when the order was placed. Maintained set-based by
    order ingest and refunds, so a rank check reads a few dozen rows instead of a team's orders.

    Writers append to ``sales_delta`` (migration 0005: same columns, no key, rows repeat) and
    never update this table, so concurrent orders never wait on an ancestor's daily row. Readers
    sum both (``ranks.service.SALES``); ``ranks.service.fold_sales`` moves the deltas here."""

    __tablename__ = "sales_daily"
    distributor_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    personal: Mapped[int] = mapped_column(server_default=text("0"))
    team: Mapped[int] = mapped_column(server_default=text("0"))


sales_delta = Table(
    # appended by order ingest and refunds, folded into sales_daily (see SalesDaily); no key, rows
    # repeat, so a Core table rather than a mapped class
    "sales_delta",
    Base.metadata,
    Column("distributor_id", BigInteger, nullable=False),
    Column("day", Date, nullable=False),
    Column("personal", BigInteger, nullable=False, server_default=text("0")),
    Column("team", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_sales_delta_distributor_day", "distributor_id", "day"),
)


class CommissionQualification(Base):
    """What a plan requires of a level's beneficiary to earn on it (issue 18: an upline earns on
    levels 2 and 3 only while it sells itself): own net sales over a rolling period up to the
    order's placed_at, and/or a minimum rank. An unqualified level is skipped (``CommissionSkip``)."""

    __tablename__ = "commission_qualification"
    plan_id: Mapped[int] = mapped_column(ForeignKey("commission_plan.id"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    min_own_sales: Mapped[int] = mapped_column(server_default=text("0"))
    period_days: Mapped[int] = mapped_column(SmallInteger, server_default=text("30"))
    min_rank: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint("min_own_sales >= 0 AND period_days BETWEEN 1 AND 3660", name="bounds"),
    )


class CommissionSkip(Base):
    """A level of an order that earned nothing because its beneficiary did not qualify, with the
    figures it was judged on (written by the attribution statement; no foreign keys, like
    ``commission``)."""

    __tablename__ = "commission_skip"
    order_id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    beneficiary_id: Mapped[int]
    plan_id: Mapped[int]
    rank: Mapped[str] = mapped_column(String(16))
    own_sales: Mapped[int]
    min_own_sales: Mapped[int]
    period_days: Mapped[int] = mapped_column(SmallInteger)
    min_rank: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()
