"""staff are people; console sessions and sign-in attempts

Revision ID: 0080
Revises: 0070
"""

import sqlalchemy as sa
from alembic import op

revision = "0080"
down_revision = "0050"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_secret", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
        sa.UniqueConstraint("name", name="uq_staff_name"),
    )
    op.add_column("api_key", sa.Column("staff_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("fk_api_key_staff_id_staff", "api_key", "staff", ["staff_id"], ["id"])
    op.create_index("ix_api_key_staff_id", "api_key", ["staff_id"])
    op.add_column("audit_log", sa.Column("actor_staff_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "console_session",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("enrol_secret", sa.LargeBinary(), nullable=True),
        sa.Column("failed_codes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_key.id"], name="fk_console_session_key_id_api_key"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name="fk_console_session_staff_id_staff"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_console_session"),
    )
    op.create_index("ix_console_session_staff_id", "console_session", ["staff_id"])
    op.create_table(
        "console_sign_in_attempt",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_console_sign_in_attempt"),
    )
    op.create_index("ix_console_sign_in_attempt_client", "console_sign_in_attempt", ["client", "at"])


def downgrade() -> None:
    op.drop_table("console_sign_in_attempt")
    op.drop_table("console_session")
    op.drop_column("audit_log", "actor_staff_id")
    op.drop_index("ix_api_key_staff_id", table_name="api_key")
    op.drop_constraint("fk_api_key_staff_id_staff", "api_key", type_="foreignkey")
    op.drop_column("api_key", "staff_id")
    op.drop_table("staff")
