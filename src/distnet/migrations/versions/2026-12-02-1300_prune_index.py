"""processed-event markers indexed by time: the prune job deletes the old ones in batches

Revision ID: 0130
Revises: 0080
"""

from alembic import op

revision = "0130"
down_revision = "0080"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_processed_event_processed_at", "processed_event", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_processed_event_processed_at", table_name="processed_event")
