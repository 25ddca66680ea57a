"""orders keep the buyer reference readable: encrypted beside the keyed hash the rules match on

The buyer reference is the seller's own record of who bought (a customer number, a nickname): the
owner and a reviewer need to read it to answer for an order in an appeal. It is personal data, so
it is stored as a Fernet token (kit.crypto). Orders stored before this keep only the hash and are
shown masked. A nullable column without a default: no table rewrite.

Revision ID: 0060
Revises: 0006
"""

from alembic import op

revision = "0060"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders ADD COLUMN buyer_ref_enc bytea")


def downgrade() -> None:
    op.execute("ALTER TABLE orders DROP COLUMN buyer_ref_enc")
