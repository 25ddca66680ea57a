"""notifications, one-time codes, consents; contact, locale and closure columns of distributor;
emergency maintenance windows

Revision ID: 0050
Revises: 0070
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0050"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("distributor", sa.Column("email_enc", sa.LargeBinary(), nullable=True))
    op.add_column("distributor", sa.Column("email_hash", sa.LargeBinary(), nullable=True))
    op.add_column("distributor", sa.Column("phone_verified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("distributor", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("distributor", sa.Column("locale", sa.String(8), server_default="zh", nullable=False))
    op.add_column("distributor", sa.Column("closure_reason", sa.String(32), nullable=True))
    op.add_column("distributor", sa.Column("closure_note", sa.Text(), nullable=True))
    op.add_column("distributor", sa.Column("closure_requested_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_distributor_email_hash", "distributor", ["email_hash"])
    op.create_check_constraint("locale", "distributor", "locale IN ('zh','en')")
    op.drop_constraint(op.f("ck_distributor_status"), "distributor", type_="check")
    op.create_check_constraint("status", "distributor", "status IN ('active','closing','closed','erased')")
    # closed accounts whose personal data is already gone are in the last state of the machine
    op.execute("UPDATE distributor SET status = 'erased' WHERE status = 'closed' AND erased_at IS NOT NULL")

    op.add_column(
        "maintenance_window",
        sa.Column("emergency", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("maintenance_window", sa.Column("emergency_reason", sa.Text(), nullable=True))
    op.create_check_constraint(
        "emergency_reason", "maintenance_window", "NOT emergency OR emergency_reason IS NOT NULL"
    )

    op.create_table(
        "notification",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("distributor_id", sa.BigInteger(), sa.ForeignKey("distributor.id"), nullable=False),
        sa.Column("event_key", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("params", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("destination_enc", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "event_key", "distributor_id", "channel", name="uq_notification_event_recipient_channel"
        ),
        sa.CheckConstraint("channel IN ('inbox','email','sms')", name="channel"),
        sa.CheckConstraint("status IN ('pending','sent','failed','skipped')", name="status"),
    )
    op.create_index("ix_notification_inbox", "notification", ["distributor_id", "channel", "id"])
    op.create_index(
        "ix_notification_pending", "notification", ["id"], postgresql_where=sa.text("status = 'pending'")
    )

    op.create_table(
        "notification_preference",
        sa.Column("distributor_id", sa.BigInteger(), sa.ForeignKey("distributor.id"), primary_key=True),
        sa.Column("email_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("sms_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "muted_kinds", postgresql.ARRAY(sa.String(64)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )

    op.create_table(
        "verification_code",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("distributor_id", sa.BigInteger(), sa.ForeignKey("distributor.id"), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("destination_enc", sa.LargeBinary(), nullable=True),
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("channel IN ('inbox','email','sms')", name="channel"),
    )
    op.create_index("ix_verification_code_owner", "verification_code", ["distributor_id", "purpose", "id"])

    op.create_table(
        "consent",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("distributor_id", sa.BigInteger(), sa.ForeignKey("distributor.id"), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("document_version", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('terms','privacy','marketing','sms')", name="purpose"),
    )
    op.create_index("ix_consent_distributor", "consent", ["distributor_id", "purpose"])


def downgrade() -> None:
    op.drop_table("consent")
    op.drop_table("verification_code")
    op.drop_table("notification_preference")
    op.drop_table("notification")
    op.drop_constraint(op.f("ck_maintenance_window_emergency_reason"), "maintenance_window", type_="check")
    op.drop_column("maintenance_window", "emergency_reason")
    op.drop_column("maintenance_window", "emergency")
    op.execute("UPDATE distributor SET status = 'closed' WHERE status = 'erased'")
    op.drop_constraint(op.f("ck_distributor_status"), "distributor", type_="check")
    op.create_check_constraint("status", "distributor", "status IN ('active','closing','closed')")
    op.drop_constraint(op.f("ck_distributor_locale"), "distributor", type_="check")
    op.drop_index("ix_distributor_email_hash", "distributor")
    for column in (
        "closure_requested_at",
        "closure_note",
        "closure_reason",
        "locale",
        "email_verified_at",
        "phone_verified_at",
        "email_hash",
        "email_enc",
    ):
        op.drop_column("distributor", column)
