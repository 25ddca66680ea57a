"""Bank files of a payout run, streamed: items are read through a server-side cursor in batches,
so a 100k-item run never sits in memory at once. CSV goes out as it is produced; XLSX is written
by xlsxwriter in constant_memory mode, in a child process (``xlsx_book``), to a temporary file (the
zip container is only complete at close) and then streamed from it.

The account reference is decrypted here and written, unmasked, into the bank file only: it is never
logged and never appears in any other response."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import sys
import tempfile
from collections.abc import AsyncIterator

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.kit.crypto import decrypt_many
from distnet.kit.money import format_amount
from distnet.payouts.xlsx_book import COLUMNS, FRAME_HEADER

BATCH = 2000

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
            accounts = decrypt_many(secret, [row[3] for row in batch])
            yield [
                [code, name, account or "", format_amount(amount), currency, item_id]
                for (item_id, code, name, _, amount, currency), account in zip(batch, accounts, strict=True)
            ]


async def csv_stream(sessionmaker: async_sessionmaker[AsyncSession], secret: bytes, run_id: int
                     ) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    # a download abandoned half way closes the item cursor's session now, not at garbage collection
    async with contextlib.aclosing(_rows(sessionmaker, secret, run_id)) as batches:
        async for rows in batches:
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
    """The workbook is written by a child process (``xlsx_book``) fed through a pipe: this process
    reads and decrypts the next batch while the child writes the previous one, and the event loop
    is never held for the seconds xlsxwriter needs for 100k rows."""
    fd, path = tempfile.mkstemp(prefix=f"payout-run-{run_id}-", suffix=".xlsx")
    os.close(fd)
    book = None
    stack = contextlib.ExitStack()
    try:
        async with sessionmaker() as session:
            summary = await run_summary(session, run_id)
        # stderr to a file, not a pipe: a child that writes a lot there can never block on it
        errors = stack.enter_context(tempfile.TemporaryFile())
        book = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "distnet.payouts.xlsx_book", path,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=errors)
        assert book.stdin is not None
        encode = msgspec.msgpack.Encoder().encode

        async def send(obj: object) -> None:
            payload = encode(obj)
            book.stdin.write(FRAME_HEADER.pack(len(payload)) + payload)
            await book.stdin.drain()

        try:
            await send([
                ["payout run", summary["id"]], ["status", summary["status"]], ["currency", summary["currency"]],
                ["cutoff", str(summary["cutoff"])], ["created by", summary["created_by"]],
                ["approved by", summary["approved_by"] or ""], ["note", summary["note"] or ""],
                ["items", summary["items"]], ["total amount", format_amount(int(summary["total"]))],
            ])
            # closed on the way out even when the child dies half way: its session holds a cursor
            async with contextlib.aclosing(_rows(sessionmaker, secret, run_id)) as batches:
                async for rows in batches:
                    await send(rows)
            book.stdin.close()  # end of input: the child closes the workbook
            await book.stdin.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child died: its exit status and stderr say why, below
        if await book.wait() != 0:
            errors.seek(0)
            raise RuntimeError(f"xlsx bank file of payout run {run_id}: writer exited with {book.returncode}: "
                               f"{errors.read().decode(errors='replace')[-2000:]}")
        with open(path, "rb") as fh:  # noqa: ASYNC230 - local temp file, read in 256 KiB chunks
            while chunk := fh.read(256 * 1024):
                yield chunk
    finally:
        if book is not None and book.returncode is None:  # the download was abandoned half way
            book.kill()
            await book.wait()
        stack.close()
        os.unlink(path)
