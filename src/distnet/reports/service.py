"""The figures behind the finance reports. Money columns are strings with two decimals (as in
the API); each report returns (summary, columns, batches of rows)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.kit.errors import NotFound
from distnet.kit.money import format_amount

BATCH = 5000

STATEMENT_COLUMNS = ["commission_id", "order_id", "order_external_id", "level", "rate_bps", "base", "amount",
                     "reversed", "net", "status", "created_at", "hold_until", "available_at", "paid_at"]

STATEMENT_ROWS = text(
    """
    SELECT c.id, c.order_id, o.external_id, c.level, c.rate_bps, c.base, c.amount, c.reversed,
           c.amount - c.reversed AS net, c.status, c.created_at, c.hold_until, c.available_at, c.paid_at
      FROM commission c JOIN orders o ON o.id = c.order_id
     WHERE c.beneficiary_id = :d AND c.created_at >= :start AND c.created_at < :end
     ORDER BY c.id
    """
)


async def _distributor(session: AsyncSession, distributor_id: int) -> Any:
    row = (await session.execute(text("SELECT id, code, name FROM distributor WHERE id = :d"),
                                 {"d": distributor_id})).one_or_none()
    if row is None:
        raise NotFound(f"no distributor {distributor_id}")
    return row


async def commission_statement_summary(session: AsyncSession, distributor_id: int, start: datetime, end: datetime
                                       ) -> list[tuple[str, Any]]:
    d = await _distributor(session, distributor_id)
    rows = (await session.execute(text(
        """
        SELECT status, count(*) AS n, sum(amount) AS amount, sum(reversed) AS reversed, sum(amount - reversed) AS net
          FROM commission WHERE beneficiary_id = :d AND created_at >= :start AND created_at < :end
         GROUP BY status ORDER BY status
        """), {"d": distributor_id, "start": start, "end": end})).all()
    summary: list[tuple[str, Any]] = [("distributor", f"{d.code} {d.name}"), ("distributor_id", d.id),
                                      ("from", start), ("to", end)]
    for r in rows:
        summary.append((f"{r.status}: commissions", int(r.n)))
        summary.append((f"{r.status}: net", format_amount(int(r.net))))
    summary += [("commissions", sum(int(r.n) for r in rows)),
                ("gross", format_amount(sum(int(r.amount) for r in rows))),
                ("reversed", format_amount(sum(int(r.reversed) for r in rows))),
                ("net", format_amount(sum(int(r.net) for r in rows)))]
    return summary


async def _stream(sessionmaker: async_sessionmaker[AsyncSession], stmt: Any, params: dict[str, Any],
                  shape: Any) -> AsyncIterator[list[Sequence[Any]]]:
    async with sessionmaker() as session:
        result = await session.stream(stmt.execution_options(yield_per=BATCH), params)
        async for batch in result.partitions(BATCH):
            yield [shape(row) for row in batch]


def statement_rows(sessionmaker: async_sessionmaker[AsyncSession], distributor_id: int, start: datetime,
                   end: datetime) -> AsyncIterator[list[Sequence[Any]]]:
    def shape(r: Any) -> Sequence[Any]:
        return [r[0], r[1], r[2], r[3], r[4], format_amount(r[5]), format_amount(r[6]), format_amount(r[7]),
                format_amount(r[8]), r[9], r[10], r[11], r[12], r[13]]

    return _stream(sessionmaker, STATEMENT_ROWS, {"d": distributor_id, "start": start, "end": end}, shape)


PAYOUT_COLUMNS = ["item_id", "distributor_id", "distributor_code", "name", "amount", "currency", "status",
                  "bank_reference", "failure_reason", "result_at"]

PAYOUT_ROWS = text(
    """
    SELECT i.id, i.distributor_id, d.code, d.name, i.amount, i.currency, i.status, i.bank_reference,
           i.failure_reason, i.result_at
      FROM payout_item i JOIN distributor d ON d.id = i.distributor_id
     WHERE i.run_id = :run ORDER BY i.id
    """
)


async def payout_run_summary(session: AsyncSession, run_id: int) -> list[tuple[str, Any]]:
    run = (await session.execute(text("SELECT * FROM payout_run WHERE id = :r"), {"r": run_id})).one_or_none()
    if run is None:
        raise NotFound(f"no payout run {run_id}")
    summary: list[tuple[str, Any]] = [
        ("payout_run", run.id), ("status", run.status), ("currency", run.currency), ("cutoff", run.cutoff),
        ("min_amount", format_amount(run.min_amount)), ("created_by", run.created_by),
        ("created_at", run.created_at), ("approved_by", run.approved_by), ("approved_at", run.approved_at),
        ("exported_at", run.exported_at), ("completed_at", run.completed_at), ("cancelled_at", run.cancelled_at),
        ("items", run.item_count), ("total", format_amount(run.total_amount)),
    ]
    rows = (await session.execute(text(
        "SELECT status, count(*) AS n, sum(amount) AS amount FROM payout_item WHERE run_id = :r "
        "GROUP BY status ORDER BY status"), {"r": run_id})).all()
    for r in rows:
        summary += [(f"{r.status}: items", int(r.n)), (f"{r.status}: amount", format_amount(int(r.amount)))]
    return summary


def payout_run_rows(sessionmaker: async_sessionmaker[AsyncSession], run_id: int) -> AsyncIterator[list[Sequence[Any]]]:
    def shape(r: Any) -> Sequence[Any]:
        return [r[0], r[1], r[2], r[3], format_amount(r[4]), r[5], r[6], r[7], r[8], r[9]]

    return _stream(sessionmaker, PAYOUT_ROWS, {"run": run_id}, shape)


TRIAL_COLUMNS = ["account", "owner", "currency", "accounts", "balance", "postings_total", "consistent"]


async def trial_balance(session: AsyncSession) -> tuple[list[tuple[str, Any]], list[Sequence[Any]]]:
    """Per account kind and currency: the sum of balances and of postings. Debits and credits of a
    double-entry ledger cancel out: the grand total per currency is zero."""
    rows = (await session.execute(text(
        """
        WITH sums AS (
            SELECT account_id, sum(amount) AS total FROM ledger_posting GROUP BY account_id
        )
        SELECT a.kind, CASE WHEN a.distributor_id IS NULL THEN 'platform' ELSE 'distributors' END AS owner,
               a.currency, count(*) AS accounts, sum(a.balance) AS balance, coalesce(sum(s.total), 0) AS postings
          FROM ledger_account a LEFT JOIN sums s ON s.account_id = a.id
         GROUP BY 1, 2, 3 ORDER BY 3, 2 DESC, 1
        """))).all()
    out: list[Sequence[Any]] = [[r.kind, r.owner, r.currency, int(r.accounts), format_amount(int(r.balance)),
            format_amount(int(r.postings)), int(r.balance) == int(r.postings)] for r in rows]
    totals: dict[str, int] = {}
    for r in rows:
        totals[r.currency] = totals.get(r.currency, 0) + int(r.balance)
    summary: list[tuple[str, Any]] = [(f"total {c}", format_amount(t)) for c, t in sorted(totals.items())]
    summary.append(("balanced", all(t == 0 for t in totals.values()) and all(row[-1] for row in out)))
    return summary, out


AGEING_COLUMNS = ["distributor_id", "distributor_code", "name", "owed", "days_0_30", "days_31_60", "days_61_90",
                  "days_over_90", "oldest_debt_at"]

# What is owed, aged by the date each piece of debt arose. Debt postings (negative, on the owed
# account) are paid down first-in first-out by the credits (netting at settlement, repayments):
# the part of a debt still open is min(its amount, cumulative debt up to it - all credits).
AGEING_ROWS = text(
    """
    WITH p AS (
        SELECT a.distributor_id AS d, p.id, p.created_at, p.amount
          FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id
         WHERE a.kind = 'owed' AND a.currency = :currency AND p.created_at <= :as_of
    ), debts AS (
        SELECT d, id, created_at, -amount AS debt,
               sum(-amount) OVER (PARTITION BY d ORDER BY created_at, id) AS cumulative
          FROM p WHERE amount < 0
    ), credits AS (
        SELECT d, sum(amount) AS paid FROM p WHERE amount > 0 GROUP BY d
    ), open_debt AS (
        SELECT debts.d, debts.created_at,
               greatest(0, least(debts.debt, debts.cumulative - coalesce(c.paid, 0))) AS open,
               extract(epoch FROM (CAST(:as_of AS timestamptz) - debts.created_at)) / 86400 AS age
          FROM debts LEFT JOIN credits c ON c.d = debts.d
    )
    SELECT o.d, dist.code, dist.name, sum(o.open) AS owed,
           coalesce(sum(o.open) FILTER (WHERE o.age < 31), 0) AS b0,
           coalesce(sum(o.open) FILTER (WHERE o.age >= 31 AND o.age < 61), 0) AS b1,
           coalesce(sum(o.open) FILTER (WHERE o.age >= 61 AND o.age < 91), 0) AS b2,
           coalesce(sum(o.open) FILTER (WHERE o.age >= 91), 0) AS b3,
           min(o.created_at) FILTER (WHERE o.open > 0) AS oldest
      FROM open_debt o JOIN distributor dist ON dist.id = o.d
     GROUP BY o.d, dist.code, dist.name
    HAVING sum(o.open) > 0
     ORDER BY oldest, o.d
    """
)


async def debt_ageing(session: AsyncSession, as_of: datetime, currency: str
                      ) -> tuple[list[tuple[str, Any]], list[Sequence[Any]]]:
    rows = (await session.execute(AGEING_ROWS, {"as_of": as_of, "currency": currency})).all()
    out: list[Sequence[Any]] = [[r.d, r.code, r.name, format_amount(int(r.owed)), format_amount(int(r.b0)), format_amount(int(r.b1)),
            format_amount(int(r.b2)), format_amount(int(r.b3)), r.oldest] for r in rows]
    summary: list[tuple[str, Any]] = [("as_of", as_of), ("currency", currency), ("debtors", len(rows)),
                                      ("owed", format_amount(sum(int(r.owed) for r in rows)))]
    for label, key in (("0-30 days", "b0"), ("31-60 days", "b1"), ("61-90 days", "b2"), ("over 90 days", "b3")):
        summary.append((label, format_amount(sum(int(getattr(r, key)) for r in rows))))
    return summary, out
