"""Bank files of a payout run, streamed: items are read through a server-side cursor in batches,
so a 100k-item run never sits in memory at once. CSV goes out as it is produced; XLSX is written
by xlsxwriter in constant_memory mode to a temporary file (the zip container is only complete at
close) and then streamed from it.

The account reference is decrypted here and written, unmasked, into the bank file only: it is never
logged and never appears in any other response."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.kit.crypto import decrypt
from distnet.kit.money import format_amount

BATCH = 2000
COLUMNS = ["distributor_code", "name", "account_reference", "amount", "currency", "item_id"]

ITEMS = text(
    """
    SELECT i.id, d.code, d.name, d.bank_account_enc, i.amount, i.currency
      FROM payout_item i JOIN distributor d ON d.id = i.distributor_id
     WHERE i.run_id = :run AND i.status <> 'cancelled'
     ORDER BY i.id
    """
)


async def _rows(sessionmaker: async_sessionmaker[AsyncSession], secret: bytes, run_id: int
                ) -> AsyncIterator[list[list[object]]]:
    async with sessionmaker() as session:
        result = await session.stream(ITEMS.execution_options(yield_per=BATCH), {"run": run_id})
        async for batch in result.partitions(BATCH):
            yield [
                [code, name, decrypt(secret, enc) or "", format_amount(amount), currency, item_id]
                for item_id, code, name, enc, amount, currency in batch
            ]


async def csv_stream(sessionmaker: async_sessionmaker[AsyncSession], secret: bytes, run_id: int
                     ) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    async for rows in _rows(sessionmaker, secret, run_id):
        writer.writerows(rows)
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


async def run_summary(session: AsyncSession, run_id: int) -> dict[str, object]:
    row = (await session.execute(text(
        """
        SELECT r.id, r.status, r.currency, r.cutoff, r.created_by, r.approved_by, r.note,
               count(i.id) FILTER (WHERE i.status <> 'cancelled') AS items,
               coalesce(sum(i.amount) FILTER (WHERE i.status <> 'cancelled'), 0) AS total
          FROM payout_run r LEFT JOIN payout_item i ON i.run_id = r.id
         WHERE r.id = :run GROUP BY r.id
        """), {"run": run_id})).one()
    return dict(row._mapping)


async def xlsx_stream(sessionmaker: async_sessionmaker[AsyncSession], secret: bytes, run_id: int
                      ) -> AsyncIterator[bytes]:
    import xlsxwriter

    fd, path = tempfile.mkstemp(prefix=f"payout-run-{run_id}-", suffix=".xlsx")
    os.close(fd)
    try:
        async with sessionmaker() as session:
            summary = await run_summary(session, run_id)
        wb = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
        bold = wb.add_format({"bold": True})
        # summary first: in constant_memory mode each sheet is written row by row, in order
        ws = wb.add_worksheet("Summary")
        for r, (label, value) in enumerate([
            ("payout run", summary["id"]), ("status", summary["status"]), ("currency", summary["currency"]),
            ("cutoff", str(summary["cutoff"])), ("created by", summary["created_by"]),
            ("approved by", summary["approved_by"] or ""), ("note", summary["note"] or ""),
            ("items", summary["items"]), ("total amount", format_amount(int(summary["total"]))),
        ]):
            ws.write_string(r, 0, label, bold)
            if isinstance(value, int):
                ws.write_number(r, 1, value)
            else:
                ws.write_string(r, 1, str(value))
        items = wb.add_worksheet("Items")
        for c, name in enumerate(COLUMNS):
            items.write_string(0, c, name, bold)
        r = 1
        async for rows in _rows(sessionmaker, secret, run_id):
            for code, name, account, amount, currency, item_id in rows:
                # strings stay strings: a name such as "=1+1" must not become a formula
                items.write_string(r, 0, code)
                items.write_string(r, 1, name)
                items.write_string(r, 2, account)
                items.write_string(r, 3, amount)
                items.write_string(r, 4, currency)
                items.write_number(r, 5, item_id)
                r += 1
        await asyncio.to_thread(wb.close)
        with open(path, "rb") as fh:  # noqa: ASYNC230 - local temp file, read in 256 KiB chunks
            while chunk := fh.read(256 * 1024):
                yield chunk
    finally:
        os.unlink(path)
