"""business calendar: the platform's day (distnet_local_day) and the working-day table

* ``distnet_local_day(timestamptz)``: the date of a moment in the platform's time zone, used for
  sales days and rank periods (before: the UTC date).
* ``business_day``: days that differ from the Monday-Friday week: public holidays (working =
  false) and make-up working days on a weekend (调休, working = true), loaded per year
  (``distnet calendar load``, ``PUT /api/v1/calendar/{year}``). The appeal SLA counts working days.

Revision ID: 0040
Revises: 0070
"""

import json
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import op

import distnet.calendar
from distnet.migrate import sql_source

revision = "0040"
down_revision = "0070"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sql_source("distnet_local_day", "0040"))
    op.create_table(
        "business_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_business_day")),
    )
    # the shipped 2026 table (State Council notice), so a new installation counts the SLA right
    table = json.loads((Path(distnet.calendar.__file__).parent / "data" / "cn-2026.json").read_text())
    op.bulk_insert(
        sa.table(
            "business_day",
            sa.column("day", sa.Date()),
            sa.column("working", sa.Boolean()),
            sa.column("name", sa.String()),
            sa.column("source", sa.String()),
        ),
        [
            {
                "day": date.fromisoformat(d["day"]),
                "working": d["working"],
                "name": d["name"],
                "source": table["source"],
            }
            for d in table["days"]
        ],
    )


def downgrade() -> None:
    op.drop_table("business_day")
    op.execute("DROP FUNCTION distnet_local_day(timestamptz)")
