"""One report shape, three formats: JSON (``{"summary", "columns", "items"}``), CSV and XLSX
(a Summary sheet and a data sheet, xlsxwriter in constant_memory mode). CSV and XLSX are streamed
from batches of rows, so long reports never sit in memory whole."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any

from litestar import Response
from litestar.response import Stream

from distnet.reports.schemas import Report

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Batches = AsyncIterator[list[Sequence[Any]]]


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def _csv(columns: Sequence[str], batches: Batches) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    async for rows in batches:
        writer.writerows([[_cell(v) for v in row] for row in rows])
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


async def _xlsx(
    title: str, summary: Sequence[tuple[str, Any]], columns: Sequence[str], batches: Batches
) -> AsyncIterator[bytes]:
    import xlsxwriter

    fd, path = tempfile.mkstemp(prefix="distnet-report-", suffix=".xlsx")
    os.close(fd)
    try:
        wb = xlsxwriter.Workbook(
            path, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
        )
        bold = wb.add_format({"bold": True})
        ws = wb.add_worksheet("Summary")
        ws.write_string(0, 0, title, bold)
        for r, (label, value) in enumerate(summary, start=1):
            ws.write_string(r, 0, label, bold)
            _write(ws, r, 1, value)
        data = wb.add_worksheet("Data")
        for c, name in enumerate(columns):
            data.write_string(0, c, name, bold)
        r = 1
        async for rows in batches:
            for row in rows:
                for c, value in enumerate(row):
                    _write(data, r, c, value)
                r += 1
        await asyncio.to_thread(wb.close)
        with open(path, "rb") as fh:  # noqa: ASYNC230 - local temp file, read in chunks
            while chunk := fh.read(256 * 1024):
                yield chunk
    finally:
        os.unlink(path)


def _write(ws: Any, r: int, c: int, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        ws.write_boolean(r, c, value)
    elif isinstance(value, int | float):
        ws.write_number(r, c, value)
    else:
        ws.write_string(r, c, str(_cell(value)))  # never a formula, whatever the text says


async def respond(
    fmt: str,
    *,
    name: str,
    title: str,
    summary: Sequence[tuple[str, Any]],
    columns: Sequence[str],
    batches: Batches,
    row: type,
) -> Response[Any] | Stream:
    """``row``: the report's row Struct (reports/schemas.py), fields in the order of ``columns``."""
    if fmt == "json":
        items = []
        async for rows in batches:
            items += [row(*(_cell(v) for v in values)) for values in rows]
        return Response(
            Report(title=title, summary={k: _cell(v) for k, v in summary}, columns=list(columns), items=items)
        )
    disposition = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    if fmt == "csv":
        return Stream(_csv(columns, batches), media_type="text/csv; charset=utf-8", headers=disposition)
    return Stream(_xlsx(title, summary, columns, batches), media_type=XLSX_MEDIA, headers=disposition)


async def once(rows: Sequence[Sequence[Any]]) -> Batches:
    """One batch of rows already read."""
    yield list(rows)
