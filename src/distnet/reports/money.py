"""Finance reports over months of the business calendar: money withheld and forfeited by hold
reason, and payouts by month (gross, tax, net per item status)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.money import format_amount
from distnet.reports import repository as repo

WITHHELD_COLUMNS = ["kind", "reason", "month", "commissions", "amount"]
PAYOUT_MONTH_COLUMNS = ["month", "status", "items", "gross", "tax", "net"]


async def withheld_and_forfeited(
    session: AsyncSession, *, time_zone: str, currency: str
) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    rows = (await session.execute(repo.WITHHELD, {"tz": time_zone, "currency": currency})).all()
    items = [[r.kind, r.reason, r.month, int(r.n), format_amount(int(r.amount))] for r in rows]
    summary: list[tuple[str, Any]] = [("currency", currency), ("time zone", time_zone)]
    for kind in ("withheld", "forfeited"):
        summary.append((f"{kind}: total", format_amount(sum(int(r.amount) for r in rows if r.kind == kind))))
    return summary, items


async def payouts_by_month(
    session: AsyncSession, *, time_zone: str, currency: str
) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    rows = (await session.execute(repo.PAYOUTS_BY_MONTH, {"tz": time_zone, "currency": currency})).all()
    items = [
        [
            r.month,
            r.status,
            int(r.n),
            format_amount(int(r.gross)),
            format_amount(int(r.tax)),
            format_amount(int(r.gross) - int(r.tax)),
        ]
        for r in rows
    ]
    paid = [r for r in rows if r.status == "paid"]
    summary: list[tuple[str, Any]] = [
        ("currency", currency),
        ("time zone", time_zone),
        ("paid: gross", format_amount(sum(int(r.gross) for r in paid))),
        ("paid: tax withheld", format_amount(sum(int(r.tax) for r in paid))),
        ("paid: net", format_amount(sum(int(r.gross) - int(r.tax) for r in paid))),
    ]
    return summary, items
