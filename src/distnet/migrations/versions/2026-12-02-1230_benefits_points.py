"""benefits and points (issue 18): versioned rank ladders and benefit catalogues, points lots

* ``rank_ladder``: versions of the rank thresholds managed through the API (none stored: the
  built-in ladder or ``DISTNET_RANK_LADDER``); ``distributor.rank_since``.
* ``benefit_catalogue`` / ``benefit_tier``: versions of the benefits per rank, version 1 the
  default of seed 004 (普通 / 银卡 9折 / 金卡 8.5折 / 白金卡 8折).
* points as currency ``PTS`` in the same ledger: per member ``points`` and ``points_owed`` (a
  points debt, negative), platform ``points_issued``, ``points_redeemed``, ``points_expired``;
  ``ledger_apply_postings`` queues credits to ``points`` and postings to ``points_issued`` for
  commit like the commission ones.
* ``commission_qualification`` (per plan and level: minimum own net sales over a rolling period
  and/or a minimum rank) and ``commission_skip`` (a level not earned, with the figures);
  ``distnet_own_sales(beneficiary, at, days)``.
* ``points_lot`` (what expiry, redemption and refunds take from, FIFO), ``points_spend`` and
  ``points_lot_use`` (redemptions and negative adjustments, and the lots they consumed).

Revision ID: 0110
Revises: 0130
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from distnet.migrate import sql_source

revision = "0110"
down_revision = "0130"
branch_labels = None
depends_on = None

# rank, discount_bps, monthly_points, earn_rate_bps, referral_points, flags (benefits/rules.py)
_MEMBER = ["member_offers"]
_SILVER = [*_MEMBER, "priority_events"]
_GOLD = [*_SILVER, "new_product_trial", "dedicated_service", "priority_service", "free_shipping"]
_PLATINUM = [*_GOLD, "vip_events", "personal_service"]
DEFAULT_TIERS = [
    ("member", 0, 0, 10000, 200, _MEMBER),
    ("silver", 1000, 100, 10000, 200, _SILVER),
    ("gold", 1500, 300, 12000, 300, _GOLD),
    ("platinum", 2000, 800, 15000, 500, _PLATINUM),
]


def upgrade() -> None:
    op.add_column("distributor", sa.Column("rank_since", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "rank_ladder",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("ranks", sa.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("min_personal", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("min_team", sa.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint("period_days > 0", name=op.f("ck_rank_ladder_period_days")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rank_ladder")),
        sa.UniqueConstraint("version", name=op.f("uq_rank_ladder_version")),
    )
    op.create_index("ix_rank_ladder_effective", "rank_ladder", ["effective_from", "version"], unique=False)
    op.create_table(
        "benefit_catalogue",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("point_value_minor", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("referral_min_order", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benefit_catalogue")),
        sa.UniqueConstraint("version", name=op.f("uq_benefit_catalogue_version")),
    )
    op.create_index(
        "ix_benefit_catalogue_effective", "benefit_catalogue", ["effective_from", "version"], unique=False
    )
    op.create_table(
        "benefit_tier",
        sa.Column("catalogue_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.String(length=16), nullable=False),
        sa.Column("discount_bps", sa.Integer(), nullable=False),
        sa.Column(
            "category_discounts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("monthly_points", sa.BigInteger(), nullable=False),
        sa.Column("earn_rate_bps", sa.Integer(), nullable=False),
        sa.Column("referral_points", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint("discount_bps BETWEEN 0 AND 10000", name=op.f("ck_benefit_tier_discount_bps")),
        sa.CheckConstraint(
            "monthly_points >= 0 AND referral_points >= 0 AND earn_rate_bps >= 0",
            name=op.f("ck_benefit_tier_points"),
        ),
        sa.ForeignKeyConstraint(
            ["catalogue_id"],
            ["benefit_catalogue.id"],
            name=op.f("fk_benefit_tier_catalogue_id_benefit_catalogue"),
        ),
        sa.PrimaryKeyConstraint("catalogue_id", "rank", name=op.f("pk_benefit_tier")),
    )
    op.create_table(
        "points_lot",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("netted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("reversed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expired", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "source IN ('order','referral','monthly','adjustment')", name=op.f("ck_points_lot_source")
        ),
        sa.CheckConstraint(
            "amount > 0 AND remaining >= 0 AND remaining <= amount",
            name=op.f("ck_points_lot_remaining_bounded"),
        ),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_points_lot_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_lot")),
        sa.UniqueConstraint(
            "distributor_id",
            "source",
            "source_ref",
            name=op.f("uq_points_lot_distributor_id_source_source_ref"),
        ),
    )
    op.create_index(
        "ix_points_lot_due",
        "points_lot",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_points_lot_open",
        "points_lot",
        ["distributor_id", "expires_at", "id"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_points_lot_order",
        "points_lot",
        ["order_id"],
        unique=False,
        postgresql_where=sa.text("order_id IS NOT NULL"),
    )
    op.create_table(
        "points_spend",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("distributor_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint("kind IN ('redemption','adjustment')", name=op.f("ck_points_spend_kind")),
        sa.CheckConstraint("points > 0", name=op.f("ck_points_spend_points_positive")),
        sa.ForeignKeyConstraint(
            ["distributor_id"], ["distributor.id"], name=op.f("fk_points_spend_distributor_id_distributor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_spend")),
        sa.UniqueConstraint(
            "distributor_id",
            "kind",
            "idempotency_key",
            name=op.f("uq_points_spend_distributor_id_kind_idempotency_key"),
        ),
    )
    op.create_table(
        "points_lot_use",
        sa.Column("spend_id", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["points_lot.id"], name=op.f("fk_points_lot_use_lot_id_points_lot")
        ),
        sa.ForeignKeyConstraint(
            ["spend_id"], ["points_spend.id"], name=op.f("fk_points_lot_use_spend_id_points_spend")
        ),
        sa.PrimaryKeyConstraint("spend_id", "lot_id", name=op.f("pk_points_lot_use")),
    )
    op.create_table(
        "commission_qualification",
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("min_own_sales", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("period_days", sa.SmallInteger(), server_default=sa.text("30"), nullable=False),
        sa.Column("min_rank", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "min_own_sales >= 0 AND period_days BETWEEN 1 AND 3660",
            name=op.f("ck_commission_qualification_bounds"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["commission_plan.id"],
            name=op.f("fk_commission_qualification_plan_id_commission_plan"),
        ),
        sa.PrimaryKeyConstraint("plan_id", "level", name=op.f("pk_commission_qualification")),
    )
    op.create_table(
        "commission_skip",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("beneficiary_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.String(length=16), nullable=False),
        sa.Column("own_sales", sa.BigInteger(), nullable=False),
        sa.Column("min_own_sales", sa.BigInteger(), nullable=False),
        sa.Column("period_days", sa.SmallInteger(), nullable=False),
        sa.Column("min_rank", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "level", name=op.f("pk_commission_skip")),
    )
    op.execute(sql_source("distnet_own_sales", "0110"))
    op.execute(sql_source("ledger_apply_postings", "0110"))
    # the default catalogue, and the points accounts of every member and of the platform
    op.execute(
        sa.text(
            "INSERT INTO benefit_catalogue (version, name, effective_from, created_by) "
            "VALUES (1, :name, '2000-01-01T00:00:00Z', 'migration 0110')"
        ).bindparams(name="会员权益 (seed 004): 普通 / 银卡 9折 / 金卡 8.5折 / 白金卡 8折")
    )
    for rank, discount, monthly, earn, referral, flags in DEFAULT_TIERS:
        op.execute(
            sa.text(
                "INSERT INTO benefit_tier (catalogue_id, rank, discount_bps, monthly_points, earn_rate_bps, "
                "referral_points, flags) SELECT id, :rank, :discount, :monthly, :earn, :referral, CAST(:flags AS text[]) "
                "FROM benefit_catalogue WHERE version = 1"
            ).bindparams(
                rank=rank, discount=discount, monthly=monthly, earn=earn, referral=referral, flags=flags
            )
        )
    op.execute(
        "INSERT INTO ledger_account (distributor_id, kind, currency, balance) "
        "SELECT d.id, k, 'PTS', 0 FROM distributor d, unnest(ARRAY['points', 'points_owed']) k "
        "ON CONFLICT DO NOTHING"
    )
    op.execute(
        "INSERT INTO ledger_account (distributor_id, kind, currency, balance) "
        "SELECT NULL, k, 'PTS', 0 FROM unnest(ARRAY['points_issued', 'points_redeemed', 'points_expired']) k "
        "ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.execute(sql_source("ledger_apply_postings", "0011"))
    op.execute("DROP FUNCTION distnet_own_sales(bigint, timestamptz, int)")
    for table in (
        "commission_skip",
        "commission_qualification",
        "points_lot_use",
        "points_spend",
        "points_lot",
        "benefit_tier",
        "benefit_catalogue",
        "rank_ladder",
    ):
        op.drop_table(table)
    op.drop_column("distributor", "rank_since")
