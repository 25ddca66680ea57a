"""Tax withholding: which table is in force, the payment month, the monthly report for filing and
the year-end statement. The tax itself is computed in the payout run's statement
(``distnet_withholding_tax``; ``tax.rules`` is its pure twin)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.tax import repository as repo
from distnet.tax.rules import CHINA_LABOUR_REMUNERATION

DEFAULT_NAME = "劳务报酬所得 预扣预缴 (China, labour remuneration)"


@dataclass(frozen=True, slots=True)
class TaxTableVersion:
    id: int
    version: int
    name: str
    effective_from: date
    rules: dict[str, Any]


def tax_month(at: datetime, time_zone: str) -> date:
    """The payment month: the first day of ``at``'s month on the business calendar."""
    local = at.astimezone(ZoneInfo(time_zone))
    return date(local.year, local.month, 1)


async def effective_table(session: AsyncSession, month: date) -> TaxTableVersion | None:
    await session.execute(repo.ENSURE_DEFAULT, {"name": DEFAULT_NAME, "rules": json.dumps(CHINA_LABOUR_REMUNERATION)})
    row = (await session.execute(repo.EFFECTIVE_TABLE, {"month": month})).first()
    return None if row is None else TaxTableVersion(row.id, row.version, row.name, row.effective_from, row.rules)
