"""Balances and statements of one distributor. Balances are O(1): the ledger trigger maintains
them. A statement lists the distributor's postings with each account's balance after the line
and a running balance of the money that is the distributor's and not yet paid out
(pending + available + withheld + reserved + owed)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.errors import ValidationFailed
from distnet.kit.money import format_amount
from distnet.ledger import repository as repo
from distnet.ledger.schemas import Balances, DistributorBalances, Statement, StatementLine
from distnet.ledger.service import balances as raw_balances

MAX_LINES = 100_000
COLUMNS = (
    "at",
    "transaction_id",
    "kind",
    "ref_type",
    "ref_id",
    "account",
    "commission_id",
    "amount",
    "account_balance",
    "running_balance",
)


def balances_view(found: dict[str, int]) -> Balances:
    return Balances(
        pending=format_amount(found["pending"]),
        available=format_amount(found["available"]),
        withheld=format_amount(found["withheld"]),
        reserved=format_amount(found["reserved"]),
        paid=format_amount(found["paid"]),
        owed=format_amount(-found["owed"]),
    )


async def balances(session: AsyncSession, distributor_id: int, currency: str) -> DistributorBalances:
    view = balances_view(await raw_balances(session, distributor_id=distributor_id, currency=currency))
    return DistributorBalances(
        distributor_id=distributor_id, currency=currency, **msgspec.structs.asdict(view)
    )


async def statement_lines(
    session: AsyncSession, distributor_id: int, currency: str, start: datetime | None, end: datetime | None
) -> Statement:
    if start is not None and end is not None and start > end:
        raise ValidationFailed("from must not be after to", field="from")
    params = {"d": distributor_id, "cur": currency, "start": start, "end": end, "limit": MAX_LINES + 1}
    opening = await session.execute(
        repo.OPENING_BALANCES,
        params,
    )
    per_account = {r.kind: int(r.total) for r in opening}
    running = sum(v for k, v in per_account.items() if k != "paid")
    opening_balance = running
    rows = (
        await session.execute(
            repo.STATEMENT_LINES,
            params,
        )
    ).all()
    if len(rows) > MAX_LINES:
        raise ValidationFailed(f"more than {MAX_LINES} lines: choose a shorter period", field="from")
    lines = []
    for r in rows:
        per_account[r.account] = per_account.get(r.account, 0) + r.amount
        if r.account != "paid":
            running += r.amount
        lines.append(
            StatementLine(
                at=r.at,
                transaction_id=r.transaction_id,
                kind=r.kind,
                ref_type=r.ref_type,
                ref_id=r.ref_id,
                account=r.account,
                commission_id=r.commission_id,
                amount=format_amount(r.amount),
                account_balance=format_amount(per_account[r.account]),
                running_balance=format_amount(running),
            )
        )
    return Statement(
        distributor_id=distributor_id,
        currency=currency,
        from_=start,
        to=end,
        opening_balance=format_amount(opening_balance),
        closing_balance=format_amount(running),
        items=lines,
    )


def to_csv(statement: Statement) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for line in statement.items:
        writer.writerow(
            [
                line.at.isoformat() if line.at else "",
                *["" if getattr(line, c) is None else getattr(line, c) for c in COLUMNS[1:]],
            ]
        )
    return buf.getvalue().encode()


def to_xlsx(statement: Statement) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet("statement")
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, COLUMNS, bold)
    for i, line in enumerate(statement.items, start=1):
        sheet.write_datetime(i, 0, line.at.replace(tzinfo=None), when)
        for j, c in enumerate(COLUMNS[1:], start=1):
            value = getattr(line, c)
            if c in ("amount", "account_balance", "running_balance"):
                sheet.write_number(i, j, float(value), money)
            elif value is not None:
                sheet.write(i, j, value)
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, len(COLUMNS) - 1, 16)
    book.close()
    return buf.getvalue()
