"""outbox_event.request_id: the id of the request (or job) that wrote the event, carried onto the
jobs that handle it

Revision ID: 0160
Revises: 0125
"""

import sqlalchemy as sa
from alembic import op

revision = "0160"
down_revision = "0125"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no default: adding it rewrites nothing (events of periodic jobs have none)
    op.add_column("outbox_event", sa.Column("request_id", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox_event", "request_id")
