"""finance: payout accounts, tax table and withholding, payout skips, bank returns

* ``payout_account``: versioned payout destinations; the never-checked ``distributor.bank_account_enc``
  given at registration moves here as a bank card ``needs_confirmation`` (payouts skip it until
  the owner confirms it with full details), and the column goes.
* ``tax_table`` with China's labour remuneration withholding as version 1, and the SQL function
  ``distnet_withholding_tax(income, rules)`` that payout runs use (``tax/rules.py`` is its pure twin).
* ``payout_item``: tax withheld, tax month, tax table, account version, final payout of a closing
  account, bank return (退票); status ``returned``.
* ``tax_payable`` platform account per currency; ``tax_identity`` kept through erasure.

Revision ID: 0070
Revises: 0060
"""

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from distnet.migrate import sql_source

revision = "0070"
down_revision = "0060"
branch_labels = None
depends_on = None

DEFAULT_RULES = {
    "kind": "progressive_after_deduction",
    "deduction": {"threshold": 400000, "fixed": 80000, "rate_bps": 2000},
    "brackets": [
        {"up_to": 2000000, "rate_bps": 2000, "quick_deduction": 0},
        {"up_to": 5000000, "rate_bps": 3000, "quick_deduction": 200000},
        {"up_to": None, "rate_bps": 4000, "quick_deduction": 700000},
    ],
}


def upgrade() -> None:
    op.create_table(
        "tax_table",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_table")),
        sa.UniqueConstraint("version", name=op.f("uq_tax_table_version")),
    )
    op.execute(
        sa.text(
            "INSERT INTO tax_table (version, name, effective_from, rules, created_by) "
            "VALUES (1, :name, DATE '2019-01-01', CAST(:rules AS jsonb), 'migration 0070')"
        ).bindparams(
            name="劳务报酬所得 预扣预缴 (China, labour remuneration)", rules=json.dumps(DEFAULT_RULES)
        )
    )
    op.execute(sql_source("distnet_withholding_tax", "0070"))

    op.create_table(
        "payout_account",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("holder_name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("account_number_enc", sa.LargeBinary(), nullable=True),
        sa.Column("account_hash", sa.LargeBinary(), nullable=True),
        sa.Column("account_last4", sa.String(length=4), nullable=True),
        sa.Column("bank_name", sa.String(length=100), nullable=True),
        sa.Column("bank_branch", sa.String(length=200), nullable=True),
        sa.Column("resident_id_enc", sa.LargeBinary(), nullable=True),
        sa.Column("resident_id_last4", sa.String(length=4), nullable=True),
        sa.Column("status", sa.String(length=24), server_default="active", nullable=False),
        sa.Column("cooling_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "method IN ('bank_card','alipay','wechat')", name=op.f("ck_payout_account_method")
        ),
        sa.CheckConstraint(
            "status IN ('active','needs_confirmation','superseded','erased')",
            name=op.f("ck_payout_account_status"),
        ),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_payout_account_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_account")),
    )
    op.create_index(
        "uq_payout_account_current",
        "payout_account",
        ["distributor_id"],
        unique=True,
        postgresql_where=sa.text("superseded_at IS NULL"),
    )
    op.create_index("ix_payout_account_distributor", "payout_account", ["distributor_id", "id"])
    op.create_index("ix_payout_account_hash", "payout_account", ["account_hash"])
    # registration's bank_account was never checked: it becomes an account the owner must confirm
    op.execute("""
        INSERT INTO payout_account (distributor_id, method, account_number_enc, status, cooling_until, created_by)
        SELECT id, 'bank_card', bank_account_enc, 'needs_confirmation', now(), 'migration 0070'
          FROM distributor WHERE bank_account_enc IS NOT NULL
    """)
    op.drop_column("distributor", "bank_account_enc")

    op.create_table(
        "tax_identity",
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("resident_id_enc", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_tax_identity_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("distributor_id", name=op.f("pk_tax_identity")),
    )
    op.create_table(
        "payout_skip",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["payout_run.id"], name=op.f("fk_payout_skip_run_id_payout_run")),
        sa.PrimaryKeyConstraint("run_id", "distributor_id", name=op.f("pk_payout_skip")),
    )

    op.add_column(
        "payout_item", sa.Column("tax", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("payout_item", sa.Column("tax_month", sa.Date(), nullable=True))
    op.add_column("payout_item", sa.Column("tax_table_id", sa.BigInteger(), nullable=True))
    op.add_column("payout_item", sa.Column("payout_account_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "payout_item",
        sa.Column("final_payout", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("payout_item", sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payout_item", sa.Column("return_reference", sa.String(length=128), nullable=True))
    op.add_column("payout_item", sa.Column("return_reason", sa.Text(), nullable=True))
    op.create_foreign_key(
        op.f("fk_payout_item_tax_table_id_tax_table"), "payout_item", "tax_table", ["tax_table_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_payout_item_payout_account_id_payout_account"),
        "payout_item",
        "payout_account",
        ["payout_account_id"],
        ["id"],
    )
    op.drop_constraint(op.f("ck_payout_item_status"), "payout_item", type_="check")
    op.create_check_constraint(
        op.f("ck_payout_item_status"),
        "payout_item",
        "status IN ('reserved','paid','failed','cancelled','returned')",
    )
    op.create_check_constraint(op.f("ck_payout_item_tax_bounded"), "payout_item", "tax BETWEEN 0 AND amount")
    op.create_index("ix_payout_item_tax_month", "payout_item", ["tax_month", "distributor_id"])

    op.execute("""
        INSERT INTO ledger_account (distributor_id, kind, currency, balance)
        SELECT DISTINCT NULL::bigint, 'tax_payable', currency, 0 FROM ledger_account WHERE distributor_id IS NULL
        ON CONFLICT DO NOTHING
    """)


def downgrade() -> None:
    op.drop_index("ix_payout_item_tax_month", table_name="payout_item")
    op.drop_constraint(op.f("ck_payout_item_tax_bounded"), "payout_item", type_="check")
    op.drop_constraint(op.f("ck_payout_item_status"), "payout_item", type_="check")
    op.create_check_constraint(
        op.f("ck_payout_item_status"), "payout_item", "status IN ('reserved','paid','failed','cancelled')"
    )
    op.drop_constraint(
        op.f("fk_payout_item_payout_account_id_payout_account"), "payout_item", type_="foreignkey"
    )
    op.drop_constraint(op.f("fk_payout_item_tax_table_id_tax_table"), "payout_item", type_="foreignkey")
    for col in (
        "return_reason",
        "return_reference",
        "returned_at",
        "final_payout",
        "payout_account_id",
        "tax_table_id",
        "tax_month",
        "tax",
    ):
        op.drop_column("payout_item", col)
    op.drop_table("payout_skip")
    op.drop_table("tax_identity")
    op.add_column("distributor", sa.Column("bank_account_enc", sa.LargeBinary(), nullable=True))
    op.execute("""UPDATE distributor d SET bank_account_enc = a.account_number_enc FROM payout_account a
                   WHERE a.distributor_id = d.id AND a.superseded_at IS NULL AND a.method = 'bank_card'""")
    op.drop_table("payout_account")
    op.execute("DROP FUNCTION distnet_withholding_tax(bigint, jsonb)")
    op.drop_table("tax_table")
