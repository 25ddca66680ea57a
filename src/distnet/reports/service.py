"""The figures behind the finance reports. Money columns are strings with two decimals (as in
the API); each report returns (summary, columns, batches of rows)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.kit.errors import NotFound
from distnet.kit.money import format_amount
from distnet.reports import repository as repo

BATCH = 5000

STATEMENT_COLUMNS = [
    "commission_id",
    "order_id",
    "order_external_id",
    "level",
    "rate_bps",
    "base",
    "amount",
    "reversed",
    "net",
    "status",
    "created_at",
    "hold_until",
    "available_at",
    "paid_at",
]


async def _distributor(session: AsyncSession, *, distributor_id: int) -> Any:
    row = (await session.execute(repo.DISTRIBUTOR, {"d": distributor_id})).one_or_none()
    if row is None:
        raise NotFound(f"no distributor {distributor_id}")
    return row


async def commission_statement_summary(
    session: AsyncSession, *, distributor_id: int, start: datetime, end: datetime
) -> list[tuple[str, Any]]:
    d = await _distributor(session, distributor_id=distributor_id)
    rows = (
        await session.execute(repo.STATEMENT_BY_STATUS, {"d": distributor_id, "start": start, "end": end})
    ).all()
    summary: list[tuple[str, Any]] = [
        ("distributor", f"{d.code} {d.name}"),
        ("distributor_id", d.id),
        ("from", start),
        ("to", end),
    ]
    for r in rows:
        summary.append((f"{r.status}: commissions", int(r.n)))
        summary.append((f"{r.status}: net", format_amount(int(r.net))))
    summary += [
        ("commissions", sum(int(r.n) for r in rows)),
        ("gross", format_amount(sum(int(r.amount) for r in rows))),
        ("reversed", format_amount(sum(int(r.reversed) for r in rows))),
        ("net", format_amount(sum(int(r.net) for r in rows))),
    ]
    return summary


async def _stream(
    sessionmaker: async_sessionmaker[AsyncSession], stmt: Any, params: dict[str, Any], shape: Any
) -> AsyncIterator[list[Sequence[Any]]]:
    async with sessionmaker() as session:
        result = await session.stream(stmt.execution_options(yield_per=BATCH), params)
        async for batch in result.partitions(BATCH):
            yield [shape(row) for row in batch]


def statement_rows(
    sessionmaker: async_sessionmaker[AsyncSession], distributor_id: int, start: datetime, end: datetime
) -> AsyncIterator[list[Sequence[Any]]]:
    def shape(r: Any) -> Sequence[Any]:
        return [
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            format_amount(r[5]),
            format_amount(r[6]),
            format_amount(r[7]),
            format_amount(r[8]),
            r[9],
            r[10],
            r[11],
            r[12],
            r[13],
        ]

    return _stream(
        sessionmaker, repo.STATEMENT_ROWS, {"d": distributor_id, "start": start, "end": end}, shape
    )


PAYOUT_COLUMNS = [
    "item_id",
    "distributor_id",
    "distributor_code",
    "name",
    "amount",
    "currency",
    "status",
    "bank_reference",
    "failure_reason",
    "result_at",
]


async def payout_run_summary(session: AsyncSession, *, run_id: int) -> list[tuple[str, Any]]:
    run = (await session.execute(repo.PAYOUT_RUN, {"r": run_id})).one_or_none()
    if run is None:
        raise NotFound(f"no payout run {run_id}")
    summary: list[tuple[str, Any]] = [
        ("payout_run", run.id),
        ("status", run.status),
        ("currency", run.currency),
        ("cutoff", run.cutoff),
        ("min_amount", format_amount(run.min_amount)),
        ("created_by", run.created_by),
        ("created_at", run.created_at),
        ("approved_by", run.approved_by),
        ("approved_at", run.approved_at),
        ("exported_at", run.exported_at),
        ("completed_at", run.completed_at),
        ("cancelled_at", run.cancelled_at),
        ("items", run.item_count),
        ("total", format_amount(run.total_amount)),
    ]
    rows = (await session.execute(repo.PAYOUT_RUN_BY_STATUS, {"r": run_id})).all()
    for r in rows:
        summary += [(f"{r.status}: items", int(r.n)), (f"{r.status}: amount", format_amount(int(r.amount)))]
    return summary


def payout_run_rows(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: int
) -> AsyncIterator[list[Sequence[Any]]]:
    def shape(r: Any) -> Sequence[Any]:
        return [r[0], r[1], r[2], r[3], format_amount(r[4]), r[5], r[6], r[7], r[8], r[9]]

    return _stream(sessionmaker, repo.PAYOUT_ROWS, {"run": run_id}, shape)


TRIAL_COLUMNS = ["account", "owner", "currency", "accounts", "balance", "postings_total", "consistent"]


async def trial_balance(session: AsyncSession) -> tuple[list[tuple[str, Any]], list[Sequence[Any]]]:
    """Per account kind and currency: the sum of balances and of postings. Debits and credits of a
    double-entry ledger cancel out: the grand total per currency is zero."""
    rows = (await session.execute(repo.TRIAL_BALANCE)).all()
    out: list[Sequence[Any]] = [
        [
            r.kind,
            r.owner,
            r.currency,
            int(r.accounts),
            format_amount(int(r.balance)),
            format_amount(int(r.postings)),
            int(r.balance) == int(r.postings),
        ]
        for r in rows
    ]
    totals: dict[str, int] = {}
    for r in rows:
        totals[r.currency] = totals.get(r.currency, 0) + int(r.balance)
    summary: list[tuple[str, Any]] = [(f"total {c}", format_amount(t)) for c, t in sorted(totals.items())]
    summary.append(("balanced", all(t == 0 for t in totals.values()) and all(row[-1] for row in out)))
    return summary, out


AGEING_COLUMNS = [
    "distributor_id",
    "distributor_code",
    "name",
    "owed",
    "days_0_30",
    "days_31_60",
    "days_61_90",
    "days_over_90",
    "oldest_debt_at",
]


async def debt_ageing(
    session: AsyncSession, *, as_of: datetime, currency: str
) -> tuple[list[tuple[str, Any]], list[Sequence[Any]]]:
    rows = (await session.execute(repo.AGEING_ROWS, {"as_of": as_of, "currency": currency})).all()
    out: list[Sequence[Any]] = [
        [
            r.d,
            r.code,
            r.name,
            format_amount(int(r.owed)),
            format_amount(int(r.b0)),
            format_amount(int(r.b1)),
            format_amount(int(r.b2)),
            format_amount(int(r.b3)),
            r.oldest,
        ]
        for r in rows
    ]
    summary: list[tuple[str, Any]] = [
        ("as_of", as_of),
        ("currency", currency),
        ("debtors", len(rows)),
        ("owed", format_amount(sum(int(r.owed) for r in rows))),
    ]
    for label, key in (
        ("0-30 days", "b0"),
        ("31-60 days", "b1"),
        ("61-90 days", "b2"),
        ("over 90 days", "b3"),
    ):
        summary.append((label, format_amount(sum(int(getattr(r, key)) for r in rows))))
    return summary, out
