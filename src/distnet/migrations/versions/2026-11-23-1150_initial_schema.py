"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 11:50:18.136678
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import distnet.models.base
from distnet.migrate import sql_source

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS ltree")
    op.execute("CREATE SEQUENCE outbox_event_seq")
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_key_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject_type", sa.String(length=50), nullable=False),
        sa.Column("subject_id", sa.String(length=100), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject_type", "subject_id", "id"], unique=False)
    op.create_table(
        "commission_plan",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("max_levels", sa.SmallInteger(), nullable=False),
        sa.Column("hold_days", sa.SmallInteger(), nullable=False),
        sa.Column("min_order_amount", sa.BigInteger(), nullable=False),
        sa.Column("excluded_categories", sa.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint("max_levels BETWEEN 1 AND 10", name=op.f("ck_commission_plan_max_levels")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission_plan")),
        sa.UniqueConstraint("version", name=op.f("uq_commission_plan_version")),
    )
    op.create_table(
        "distributor",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sponsor_id", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("path", distnet.models.base.LTree(), nullable=False),
        sa.Column("rank", sa.String(length=16), server_default="member", nullable=False),
        sa.Column("region", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erase_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_hash", sa.LargeBinary(), nullable=True),
        sa.Column("device_enc", sa.LargeBinary(), nullable=True),
        sa.Column("device_hash", sa.LargeBinary(), nullable=True),
        sa.Column("ip_enc", sa.LargeBinary(), nullable=True),
        sa.Column("ip_hash", sa.LargeBinary(), nullable=True),
        sa.Column("payment_enc", sa.LargeBinary(), nullable=True),
        sa.Column("payment_hash", sa.LargeBinary(), nullable=True),
        sa.Column("bank_account_enc", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("rank IN ('member','silver','gold','platinum')", name=op.f("ck_distributor_rank")),
        sa.CheckConstraint("status IN ('active','closing','closed')", name=op.f("ck_distributor_status")),
        sa.CheckConstraint("depth = nlevel(path) - 1", name=op.f("ck_distributor_depth_matches_path")),
        sa.ForeignKeyConstraint(
            ["sponsor_id"], ["distributor.id"], name=op.f("fk_distributor_sponsor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributor")),
        sa.UniqueConstraint("code", name=op.f("uq_distributor_code")),
    )
    op.create_index("ix_distributor_device_hash", "distributor", ["device_hash"], unique=False)
    op.create_index("ix_distributor_ip_hash", "distributor", ["ip_hash"], unique=False)
    op.create_index("ix_distributor_payment_hash", "distributor", ["payment_hash"], unique=False)
    op.create_index("ix_distributor_phone_hash", "distributor", ["phone_hash"], unique=False)
    op.create_index("ix_distributor_region", "distributor", ["region"], unique=False)
    op.create_index(op.f("ix_distributor_sponsor_id"), "distributor", ["sponsor_id"], unique=False)
    op.create_table(
        "idempotency_record",
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status_code", sa.BigInteger(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_record")),
    )
    op.create_table(
        "ledger_transaction",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("ref_type", sa.String(length=32), nullable=True),
        sa.Column("ref_id", sa.String(length=64), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transaction")),
    )
    op.create_index("ix_ledger_transaction_ref", "ledger_transaction", ["ref_type", "ref_id"], unique=False)
    op.create_table(
        "maintenance_window",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "scope",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_maintenance_window_window_order")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_window")),
    )
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "seq", sa.BigInteger(), server_default=sa.text("nextval('outbox_event_seq')"), nullable=False
        ),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
        sa.UniqueConstraint("seq", name=op.f("uq_outbox_event_seq")),
    )
    op.create_index(
        "ix_outbox_event_unpublished",
        "outbox_event",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "payout_run",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("min_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="CNY", nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("item_count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft','approved','exported','completed','cancelled')",
            name=op.f("ck_payout_run_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_run")),
    )
    op.create_table(
        "processed_event",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_event")),
    )
    op.create_table(
        "risk_case",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("rule_version", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("subject", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("scan_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_case")),
        sa.UniqueConstraint("rule", "subject_key", name=op.f("uq_risk_case_rule_subject_key")),
    )
    op.create_index("ix_risk_case_status", "risk_case", ["status", "id"], unique=False)
    op.create_table(
        "risk_rule",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint("mode IN ('off','shadow','review','enforce')", name=op.f("ck_risk_rule_mode")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_risk_rule")),
    )
    op.create_table(
        "risk_rule_version",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_risk_rule_version")),
    )
    op.create_table(
        "risk_scan",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cases_opened", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("holds_placed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("triggered_by", sa.String(length=200), nullable=True),
        sa.Column(
            "stats",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_scan")),
    )
    op.create_table(
        "settlement_run",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("partitions", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("partitions_done", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("moved", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("triggered_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_run")),
    )
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column(
            "topics",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoint")),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("roles", sa.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_api_key_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_index(op.f("ix_api_key_distributor_id"), "api_key", ["distributor_id"], unique=False)
    op.create_table(
        "card",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=32), nullable=True),
        sa.Column("replaced_by_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_card_distributor_id_distributor")
        ),
        sa.ForeignKeyConstraint(["replaced_by_id"], ["card.id"], name=op.f("fk_card_replaced_by_id_card")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card")),
        sa.UniqueConstraint("number", name=op.f("uq_card_number")),
    )
    op.create_index(op.f("ix_card_distributor_id"), "card", ["distributor_id"], unique=False)
    op.create_index(
        "uq_card_live_distributor",
        "card",
        ["distributor_id"],
        unique=True,
        postgresql_where=sa.text("cancelled_at IS NULL"),
    )
    op.create_table(
        "commission_rate",
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("rank", sa.String(length=16), nullable=False),
        sa.Column("rate_bps", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("rate_bps BETWEEN 0 AND 10000", name=op.f("ck_commission_rate_rate_bps")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["commission_plan.id"], name=op.f("fk_commission_rate_plan_id_commission_plan")
        ),
        sa.PrimaryKeyConstraint("plan_id", "level", "rank", name=op.f("pk_commission_rate")),
    )
    op.create_table(
        "distributor_upline",
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("ancestor_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ancestor_id"], ["distributor.id"], name=op.f("fk_distributor_upline_ancestor_id_distributor")
        ),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributor.id"],
            name=op.f("fk_distributor_upline_distributor_id_distributor"),
        ),
        sa.PrimaryKeyConstraint("distributor_id", "level", name=op.f("pk_distributor_upline")),
    )
    op.create_index(
        "ix_distributor_upline_ancestor", "distributor_upline", ["ancestor_id", "level"], unique=False
    )
    op.create_table(
        "ledger_account",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="CNY", nullable=False),
        sa.Column("balance", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_ledger_account_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_account")),
    )
    op.create_index(
        "uq_ledger_account_owner_kind",
        "ledger_account",
        [sa.literal_column("coalesce(distributor_id, 0)"), "kind", "currency"],
        unique=True,
    )
    op.create_table(
        "payout_item",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="CNY", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="reserved", nullable=False),
        sa.Column("bank_reference", sa.String(length=128), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("result_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('reserved','paid','failed','cancelled')", name=op.f("ck_payout_item_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payout_item_amount_positive")),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_payout_item_distributor_id_distributor")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["payout_run.id"], name=op.f("fk_payout_item_run_id_payout_run")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_item")),
        sa.UniqueConstraint("run_id", "distributor_id", name=op.f("uq_payout_item_run_id_distributor_id")),
    )
    op.create_index("ix_payout_item_distributor", "payout_item", ["distributor_id"], unique=False)
    op.create_index("ix_payout_item_run", "payout_item", ["run_id", "id"], unique=False)
    op.create_table(
        "repayment",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_repayment_amount_positive")),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_repayment_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repayment")),
        sa.UniqueConstraint("external_id", name=op.f("uq_repayment_external_id")),
    )
    op.create_table(
        "hold",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("rule_name", sa.String(length=64), nullable=True),
        sa.Column("rule_version", sa.BigInteger(), nullable=True),
        sa.Column("risk_case_id", sa.BigInteger(), nullable=True),
        sa.Column("maintenance_window_id", sa.BigInteger(), nullable=True),
        sa.Column("subject_key", sa.String(length=200), server_default="", nullable=False),
        sa.Column("placed_by", sa.String(length=200), nullable=True),
        sa.Column("placed_by_key_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "evidence",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=200), nullable=True),
        sa.Column("lift_note", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("appealable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("forfeit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("money_settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('cleared','confirmed')", name=op.f("ck_hold_outcome")
        ),
        sa.CheckConstraint(
            "reason IN ('fake_promotion','order_brushing','unpaid_balance','maintenance','manual')",
            name=op.f("ck_hold_reason"),
        ),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"], name=op.f("fk_hold_card_id_card")),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_hold_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hold")),
    )
    op.create_index(op.f("ix_hold_card_id"), "hold", ["card_id"], unique=False)
    op.create_index(
        "ix_hold_distributor_active",
        "hold",
        ["distributor_id"],
        unique=False,
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_index(
        "uq_hold_active_subject",
        "hold",
        ["distributor_id", "reason", sa.literal_column("coalesce(rule_name, '')"), "subject_key"],
        unique=True,
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_table(
        "ledger_posting",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("commission_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_account.id"], name=op.f("fk_ledger_posting_account_id_ledger_account")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transaction.id"],
            name=op.f("fk_ledger_posting_transaction_id_ledger_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_posting")),
    )
    op.create_index("ix_ledger_posting_account", "ledger_posting", ["account_id", "id"], unique=False)
    op.create_index(
        op.f("ix_ledger_posting_transaction_id"), "ledger_posting", ["transaction_id"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("body_hash", sa.LargeBinary(), nullable=False),
        sa.Column("card_id", sa.BigInteger(), nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("buyer_ref_hash", sa.LargeBinary(), nullable=True),
        sa.Column("buyer_device_hash", sa.LargeBinary(), nullable=True),
        sa.Column("buyer_ip_hash", sa.LargeBinary(), nullable=True),
        sa.Column("buyer_payment_hash", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_orders_amount_positive")),
        sa.CheckConstraint("refunded_amount BETWEEN 0 AND amount", name=op.f("ck_orders_refund_bounded")),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"], name=op.f("fk_orders_card_id_card")),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["distributor.id"], name=op.f("fk_orders_seller_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_orders_source_external_id")),
    )
    op.create_index("ix_orders_buyer_payment", "orders", ["buyer_payment_hash"], unique=False)
    op.create_index("ix_orders_buyer_ref", "orders", ["buyer_ref_hash"], unique=False)
    op.create_index("ix_orders_card_placed", "orders", ["card_id", "placed_at"], unique=False)
    op.create_index("ix_orders_seller_placed", "orders", ["seller_id", "placed_at"], unique=False)
    op.create_table(
        "appeal",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("hold_id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column(
            "evidence",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), server_default="submitted", nullable=False),
        sa.Column("submission_no", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("assignee_key_id", sa.BigInteger(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "status IN ('submitted','in_review','info_requested','escalated','approved','rejected')",
            name=op.f("ck_appeal_status"),
        ),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_appeal_distributor_id_distributor")
        ),
        sa.ForeignKeyConstraint(["hold_id"], ["hold.id"], name=op.f("fk_appeal_hold_id_hold")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal")),
    )
    op.create_index("ix_appeal_queue", "appeal", ["status", "due_at"], unique=False)
    op.create_index(
        "uq_appeal_open_hold",
        "appeal",
        ["hold_id"],
        unique=True,
        postgresql_where=sa.text("status NOT IN ('approved','rejected')"),
    )
    op.create_table(
        "commission",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("beneficiary_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("rank_used", sa.String(length=16), nullable=False),
        sa.Column("rate_bps", sa.BigInteger(), nullable=False),
        sa.Column("base", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reversed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withheld_hold_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending','available','withheld','paid','forfeited','reversed')",
            name=op.f("ck_commission_status"),
        ),
        sa.CheckConstraint("reversed BETWEEN 0 AND amount", name=op.f("ck_commission_reversed_bounded")),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"], ["distributor.id"], name=op.f("fk_commission_beneficiary_id_distributor")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_commission_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["commission_plan.id"], name=op.f("fk_commission_plan_id_commission_plan")
        ),
        sa.ForeignKeyConstraint(
            ["withheld_hold_id"], ["hold.id"], name=op.f("fk_commission_withheld_hold_id_hold")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commission")),
        sa.UniqueConstraint("order_id", "level", name=op.f("uq_commission_order_id_level")),
    )
    op.create_index("ix_commission_beneficiary", "commission", ["beneficiary_id", "id"], unique=False)
    op.create_index(
        "ix_commission_pending_due",
        "commission",
        ["hold_until"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_commission_withheld_hold",
        "commission",
        ["withheld_hold_id"],
        unique=False,
        postgresql_where=sa.text("status = 'withheld'"),
    )
    op.create_table(
        "refund",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refund_amount_positive")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refund_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund")),
        sa.UniqueConstraint("order_id", "external_id", name=op.f("uq_refund_order_id_external_id")),
    )
    op.create_table(
        "appeal_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("appeal_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "attachments",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeal.id"], name=op.f("fk_appeal_event_appeal_id_appeal")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal_event")),
    )
    op.create_index(op.f("ix_appeal_event_appeal_id"), "appeal_event", ["appeal_id"], unique=False)
    op.create_table(
        "distributor_closure",
        sa.Column("ancestor_id", sa.BigInteger(), nullable=False),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("descendant_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ancestor_id", "depth", "descendant_id", name=op.f("pk_distributor_closure")),
    )
    op.create_index("ix_distributor_closure_descendant", "distributor_closure", ["descendant_id", "depth"])
    op.create_index("ix_ledger_account_distributor", "ledger_account", ["distributor_id", "kind"])
    op.execute(sql_source("ledger_apply_postings", "0001"))
    op.execute(sql_source("ledger_postings_append_only", "0001"))


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS ledger_apply_postings() CASCADE")
    op.execute("DROP FUNCTION IF EXISTS ledger_postings_append_only() CASCADE")
    op.drop_index(op.f("ix_appeal_event_appeal_id"), table_name="appeal_event")
    op.drop_table("appeal_event")
    op.drop_table("refund")
    op.drop_index(
        "ix_commission_withheld_hold",
        table_name="commission",
        postgresql_where=sa.text("status = 'withheld'"),
    )
    op.drop_index(
        "ix_commission_pending_due", table_name="commission", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_index("ix_commission_beneficiary", table_name="commission")
    op.drop_table("commission")
    op.drop_index(
        "uq_appeal_open_hold",
        table_name="appeal",
        postgresql_where=sa.text("status NOT IN ('approved','rejected')"),
    )
    op.drop_index("ix_appeal_queue", table_name="appeal")
    op.drop_table("appeal")
    op.drop_index("ix_orders_seller_placed", table_name="orders")
    op.drop_index("ix_orders_card_placed", table_name="orders")
    op.drop_index("ix_orders_buyer_ref", table_name="orders")
    op.drop_index("ix_orders_buyer_payment", table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_ledger_posting_transaction_id"), table_name="ledger_posting")
    op.drop_index("ix_ledger_posting_account", table_name="ledger_posting")
    op.drop_table("ledger_posting")
    op.drop_index("uq_hold_active_subject", table_name="hold", postgresql_where=sa.text("lifted_at IS NULL"))
    op.drop_index(
        "ix_hold_distributor_active", table_name="hold", postgresql_where=sa.text("lifted_at IS NULL")
    )
    op.drop_index(op.f("ix_hold_card_id"), table_name="hold")
    op.drop_table("hold")
    op.drop_table("repayment")
    op.drop_index("ix_payout_item_run", table_name="payout_item")
    op.drop_index("ix_payout_item_distributor", table_name="payout_item")
    op.drop_table("payout_item")
    op.drop_index("uq_ledger_account_owner_kind", table_name="ledger_account")
    op.drop_table("ledger_account")
    op.drop_index("ix_distributor_upline_ancestor", table_name="distributor_upline")
    op.drop_table("distributor_upline")
    op.drop_table("commission_rate")
    op.drop_index(
        "uq_card_live_distributor", table_name="card", postgresql_where=sa.text("cancelled_at IS NULL")
    )
    op.drop_index(op.f("ix_card_distributor_id"), table_name="card")
    op.drop_table("card")
    op.drop_index(op.f("ix_api_key_distributor_id"), table_name="api_key")
    op.drop_table("api_key")
    op.drop_table("distributor_closure")
    op.drop_table("webhook_endpoint")
    op.drop_table("settlement_run")
    op.drop_table("risk_scan")
    op.drop_table("risk_rule_version")
    op.drop_table("risk_rule")
    op.drop_index("ix_risk_case_status", table_name="risk_case")
    op.drop_table("risk_case")
    op.drop_table("processed_event")
    op.drop_table("payout_run")
    op.drop_index(
        "ix_outbox_event_unpublished",
        table_name="outbox_event",
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.drop_table("outbox_event")
    op.drop_table("maintenance_window")
    op.drop_index("ix_ledger_transaction_ref", table_name="ledger_transaction")
    op.drop_table("ledger_transaction")
    op.drop_table("idempotency_record")
    op.drop_index(op.f("ix_distributor_sponsor_id"), table_name="distributor")
    op.drop_index("ix_distributor_region", table_name="distributor")
    op.drop_index("ix_distributor_phone_hash", table_name="distributor")
    op.drop_index("ix_distributor_payment_hash", table_name="distributor")
    op.drop_index("ix_distributor_ip_hash", table_name="distributor")
    op.drop_index("ix_distributor_device_hash", table_name="distributor")
    op.drop_table("distributor")
    op.drop_table("commission_plan")
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.drop_table("audit_log")
    op.execute("DROP SEQUENCE IF EXISTS outbox_event_seq")
