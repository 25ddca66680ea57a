"""previous_contact: a replaced verified phone or e-mail, kept encrypted for security notices

Revision ID: 0125
Revises: 0110
"""

import sqlalchemy as sa
from alembic import op

revision = "0125"
down_revision = "0110"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "previous_contact",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("distributor_id", sa.BigInteger(), sa.ForeignKey("distributor.id"), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("address_hash", sa.LargeBinary(), nullable=True),
        sa.Column("replaced_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("channel IN ('email','sms')", name="channel"),
    )
    op.create_index("ix_previous_contact_owner", "previous_contact", ["distributor_id", "replaced_at"])


def downgrade() -> None:
    op.drop_table("previous_contact")
