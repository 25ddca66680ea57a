"""Finance reports over months of the business calendar: money withheld and forfeited by hold
reason, and payouts by month (gross, tax, net per item status)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.money import format_amount

WITHHELD_COLUMNS = ["kind", "reason", "month", "commissions", "amount"]
PAYOUT_MONTH_COLUMNS = ["month", "status", "items", "gross", "tax", "net"]

# withheld: commissions still withheld, by the month they were earned; forfeited: by the month
# their hold's money was forfeited. Both by the reason of the hold that withheld them.
WITHHELD = text(
    """
    SELECT 'withheld' AS kind, coalesce(h.reason, 'unknown') AS reason,
           to_char(c.created_at AT TIME ZONE :tz, 'YYYY-MM') AS month, count(*) AS n, sum(c.amount - c.reversed) AS amount
      FROM commission c LEFT JOIN hold h ON h.id = c.withheld_hold_id
     WHERE c.status = 'withheld' AND c.currency_ok
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT 'forfeited', coalesce(h.reason, 'unknown'),
           to_char(coalesce(h.money_settled_at, c.created_at) AT TIME ZONE :tz, 'YYYY-MM'), count(*),
           sum(c.amount - c.reversed)
      FROM commission c LEFT JOIN hold h ON h.id = c.withheld_hold_id
     WHERE c.status = 'forfeited' AND c.currency_ok
     GROUP BY 1, 2, 3
     ORDER BY 3, 1, 2
    """.replace("c.currency_ok", "EXISTS (SELECT 1 FROM orders o WHERE o.id = c.order_id AND o.currency = :currency)")
)

# payouts by the month of their run's cutoff (the tax month)
PAYOUTS = text(
    """
    SELECT to_char(r.cutoff AT TIME ZONE :tz, 'YYYY-MM') AS month, i.status, count(*) AS n, sum(i.amount) AS gross,
           sum(i.tax) AS tax
      FROM payout_item i JOIN payout_run r ON r.id = i.run_id
     WHERE i.currency = :currency
     GROUP BY 1, 2 ORDER BY 1, 2
    """
)


async def withheld_and_forfeited(session: AsyncSession, *, time_zone: str, currency: str
                                 ) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    rows = (await session.execute(WITHHELD, {"tz": time_zone, "currency": currency})).all()
    items = [[r.kind, r.reason, r.month, int(r.n), format_amount(int(r.amount))] for r in rows]
    summary: list[tuple[str, Any]] = [("currency", currency), ("time zone", time_zone)]
    for kind in ("withheld", "forfeited"):
        summary.append((f"{kind}: total", format_amount(sum(int(r.amount) for r in rows if r.kind == kind))))
    return summary, items


async def payouts_by_month(session: AsyncSession, *, time_zone: str, currency: str
                           ) -> tuple[list[tuple[str, Any]], list[list[Any]]]:
    rows = (await session.execute(PAYOUTS, {"tz": time_zone, "currency": currency})).all()
    items = [[r.month, r.status, int(r.n), format_amount(int(r.gross)), format_amount(int(r.tax)),
              format_amount(int(r.gross) - int(r.tax))] for r in rows]
    paid = [r for r in rows if r.status == "paid"]
    summary: list[tuple[str, Any]] = [
        ("currency", currency), ("time zone", time_zone),
        ("paid: gross", format_amount(sum(int(r.gross) for r in paid))),
        ("paid: tax withheld", format_amount(sum(int(r.tax) for r in paid))),
        ("paid: net", format_amount(sum(int(r.gross) - int(r.tax) for r in paid))),
    ]
    return summary, items
