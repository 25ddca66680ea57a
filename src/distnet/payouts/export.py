"""Bank files of a payout run, streamed: items are read through a server-side cursor in batches,
so a 100k-item run never sits in memory at once. CSV goes out as it is produced; XLSX is written
by xlsxwriter in constant_memory mode, in a child process (``xlsx_book``), to a temporary file (the
zip container is only complete at close) and then streamed from it.

One layout per payout method, as that channel's batch template asks (``LAYOUTS``): bank cards in
a batch-payment (代发) layout, Alipay in its batch-transfer layout, WeChat by openid. Without a
method the CSV has every item in one neutral layout and the XLSX a sheet per method. Every file
carries gross, tax, net paid, currency and item id; XLSX money cells are numbers with a
two-decimal format, dates are dates, each sheet ends with a totals row, and the Summary sheet's
totals are those of the items.

The account number and holder are decrypted here and written, unmasked, into the bank file only:
they are never logged and never appear in any other response. Every export is audited
(``service.start_export``)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.kit.crypto import decrypt_many
from distnet.kit.money import format_amount
from distnet.payouts import repository as repo
from distnet.payouts.xlsx_book import FRAME_HEADER

BATCH = 2000
METHODS = ("bank_card", "alipay", "wechat")


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    field: str
    kind: str = "text"
    """text | int | money (minor units) | date"""


C = Column
GENERIC = (
    "Items",
    (
        C("distributor_code", "code"),
        C("name", "name"),
        C("method", "method"),
        C("holder", "holder"),
        C("account_reference", "account"),
        C("bank", "bank"),
        C("branch", "branch"),
        C("gross", "gross", "money"),
        C("tax", "tax", "money"),
        C("amount", "net", "money"),
        C("currency", "currency"),
        C("item_id", "item_id", "int"),
    ),
)
LAYOUTS: dict[str, tuple[str, tuple[Column, ...]]] = {
    # a bank's batch payment (代发) template: payee account, name, bank and branch, amount, purpose
    "bank_card": (
        "bank_card 银行卡代发",
        (
            C("序号", "seq", "int"),
            C("收款账号", "account"),
            C("收款户名", "holder"),
            C("开户银行", "bank"),
            C("开户网点", "branch"),
            C("实发金额", "net", "money"),
            C("币种", "currency"),
            C("应发金额", "gross", "money"),
            C("代扣个税", "tax", "money"),
            C("用途", "purpose"),
            C("付款明细号", "item_id", "int"),
        ),
    ),
    # Alipay batch transfer (批量转账到支付宝账户): account, real name, amount, remark
    "alipay": (
        "alipay 支付宝批量转账",
        (
            C("序号", "seq", "int"),
            C("收款方支付宝账号", "account"),
            C("收款方姓名", "holder"),
            C("金额", "net", "money"),
            C("币种", "currency"),
            C("应发金额", "gross", "money"),
            C("代扣个税", "tax", "money"),
            C("备注", "purpose"),
            C("商户明细号", "item_id", "int"),
        ),
    ),
    # WeChat Pay batch transfer to change (商家转账到零钱): detail number, openid, name, amount, remark
    "wechat": (
        "wechat 微信批量转账",
        (
            C("商家明细单号", "item_id", "int"),
            C("收款用户openid", "account"),
            C("收款用户姓名", "holder"),
            C("转账金额", "net", "money"),
            C("币种", "currency"),
            C("应发金额", "gross", "money"),
            C("代扣个税", "tax", "money"),
            C("转账备注", "purpose"),
        ),
    ),
}


def layout(method: str | None) -> tuple[str, tuple[Column, ...]]:
    return GENERIC if method is None else LAYOUTS[method]


async def _records(
    sessionmaker: async_sessionmaker[AsyncSession], secret: bytes, run_id: int, method: str | None
) -> AsyncGenerator[list[dict[str, Any]], None]:
    seq = 0
    async with sessionmaker() as session:
        result = await session.stream(
            repo.EXPORT_ITEMS.execution_options(yield_per=BATCH), {"run": run_id, "method": method}
        )
        async for batch in result.partitions(BATCH):
            accounts = decrypt_many(secret, [row.account_enc for row in batch])
            holders = decrypt_many(secret, [row.holder_enc for row in batch])
            records = []
            for row, account, holder in zip(batch, accounts, holders, strict=True):
                seq += 1
                records.append(
                    {
                        "seq": seq,
                        "code": row.code,
                        "name": row.name,
                        "method": row.method,
                        "holder": holder or "",
                        "account": account or "",
                        "bank": row.bank or "",
                        "branch": row.branch or "",
                        "gross": row.amount,
                        "tax": row.tax,
                        "net": row.amount - row.tax,
                        "currency": row.currency,
                        "item_id": row.id,
                        "purpose": f"佣金 payout run {run_id}",
                    }
                )
            yield records


def _csv_value(value: Any, kind: str) -> object:
    return format_amount(int(value)) if kind == "money" else value


async def csv_stream(
    sessionmaker: async_sessionmaker[AsyncSession], secret: bytes, run_id: int, method: str | None = None
) -> AsyncIterator[bytes]:
    _, columns = layout(method)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c.title for c in columns])
    # a download abandoned half way closes the item cursor's session now, not at garbage collection
    async with contextlib.aclosing(_records(sessionmaker, secret, run_id, method)) as batches:
        async for records in batches:
            writer.writerows([[_csv_value(r[c.field], c.kind) for c in columns] for r in records])
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


async def run_summary(session: AsyncSession, run_id: int) -> dict[str, Any]:
    row = (await session.execute(repo.RUN_SUMMARY, {"run": run_id})).one()
    summary = dict(row._mapping)
    by_method = await session.execute(repo.RUN_BY_METHOD, {"run": run_id})
    summary["methods"] = {
        r.method: {"items": int(r.items), "gross": int(r.gross), "tax": int(r.tax)} for r in by_method
    }
    return summary


def summary_pairs(summary: dict[str, Any], time_zone: str) -> list[list[object]]:
    cutoff = summary["cutoff"].astimezone(ZoneInfo(time_zone))
    total, tax = int(summary["total"]), int(summary["tax"])
    pairs: list[list[object]] = [
        ["payout run", summary["id"], "int"],
        ["status", summary["status"], "text"],
        ["currency", summary["currency"], "text"],
        [f"cutoff ({time_zone})", cutoff.isoformat(), "date"],
        ["tax month", str(summary["tax_month"] or ""), "text"],
        ["created by", summary["created_by"], "text"],
        ["approved by", summary["approved_by"] or "", "text"],
        ["note", summary["note"] or "", "text"],
        ["items", summary["items"], "int"],
        ["gross", total, "money"],
        ["tax withheld", tax, "money"],
        ["net paid", total - tax, "money"],
    ]
    for method, m in sorted(summary["methods"].items()):
        pairs += [[f"{method} items", m["items"], "int"], [f"{method} net", m["gross"] - m["tax"], "money"]]
    pairs.append(["skipped distributors", summary["skipped"], "int"])
    return pairs


async def xlsx_stream(
    sessionmaker: async_sessionmaker[AsyncSession],
    secret: bytes,
    run_id: int,
    method: str | None = None,
    *,
    time_zone: str = "Asia/Shanghai",
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
            sys.executable,
            "-m",
            "distnet.payouts.xlsx_book",
            path,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=errors,
        )
        stdin = book.stdin
        assert stdin is not None
        encode = msgspec.msgpack.Encoder().encode

        async def send(*frame: object) -> None:
            payload = encode(list(frame))
            stdin.write(FRAME_HEADER.pack(len(payload)) + payload)
            await stdin.drain()

        try:
            await send("pairs", "Summary", summary_pairs(summary, time_zone))
            methods = [method] if method else [m for m in METHODS if m in summary["methods"]]
            for m in methods:
                name, columns = LAYOUTS[m]
                await send("sheet", name[:31], [c.title for c in columns], [c.kind for c in columns])
                # closed on the way out even when the child dies half way: its session holds a cursor
                async with contextlib.aclosing(_records(sessionmaker, secret, run_id, m)) as batches:
                    async for records in batches:
                        await send("rows", [[r[c.field] for c in columns] for r in records])
                await send("totals", "合计 total")
            if not method:
                await send(
                    "sheet",
                    "Skipped",
                    ["distributor_code", "available", "reasons"],
                    ["text", "money", "text"],
                )
                async with sessionmaker() as session:
                    skipped = [list(r) for r in await session.execute(repo.EXPORT_SKIPPED, {"run": run_id})]
                for start in range(0, len(skipped), BATCH):
                    await send("rows", skipped[start : start + BATCH])
            stdin.close()  # end of input: the child closes the workbook
            await stdin.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child died: its exit status and stderr say why, below
        if await book.wait() != 0:
            errors.seek(0)
            raise RuntimeError(
                f"xlsx bank file of payout run {run_id}: writer exited with {book.returncode}: "
                f"{errors.read().decode(errors='replace')[-2000:]}"
            )
        with open(path, "rb") as fh:  # noqa: ASYNC230 - local temp file, read in 256 KiB chunks
            while chunk := fh.read(256 * 1024):
                yield chunk
    finally:
        if book is not None and book.returncode is None:  # the download was abandoned half way
            book.kill()
            await book.wait()
        stack.close()
        os.unlink(path)
