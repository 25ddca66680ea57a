"""The XLSX bank file of a payout run, written by a child process.

    python -m distnet.payouts.xlsx_book OUT.xlsx < frames

xlsxwriter spends about 4 µs of pure Python per cell (3 s for a 100k-item run). In the process
that reads the items it would hold the event loop (and the GIL) that long, and it could not overlap
with reading and decrypting the next batch. So ``export.xlsx_stream`` starts this module as a child
process and pipes it the rows; the child writes the workbook on the other core. It imports
xlsxwriter and msgspec only and never sees the secret key: the parent decrypts.

Input on stdin: length-prefixed (4 bytes, big endian) msgpack frames, sheet after sheet (the
workbook is written in constant_memory mode, row by row):

* ``["sheet", name, columns, kinds]`` starts a sheet with a header row; ``kinds`` says how each
  column is written: ``text`` (always a string, never a formula), ``int``, ``money`` (integer minor
  units, written as a number with a two-decimal format) or ``date`` (an ISO timestamp, written as an
  Excel date).
* ``["rows", [[...], ...]]``: a batch of rows of the current sheet.
* ``["totals", label]``: a totals row under the current sheet: the label in the first column and
  the sum of every ``money`` column.
* ``["pairs", name, [[label, value, kind], ...]]``: a two-column sheet (the Summary).

End of input closes the workbook; exit status 0 means the file is complete.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO

FRAME_HEADER = struct.Struct(">I")


def frames(stream: BinaryIO) -> Iterator[bytes]:
    while header := stream.read(FRAME_HEADER.size):
        if len(header) < FRAME_HEADER.size:
            raise EOFError("truncated frame header")
        (size,) = FRAME_HEADER.unpack(header)
        frame = stream.read(size)
        if len(frame) < size:
            raise EOFError("truncated frame")
        yield frame


class Writer:
    def __init__(self, path: str) -> None:
        import xlsxwriter

        self.wb = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        self.bold = self.wb.add_format({"bold": True})
        self.money = self.wb.add_format({"num_format": "#,##0.00"})
        self.money_bold = self.wb.add_format({"num_format": "#,##0.00", "bold": True})
        self.date = self.wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.sheet: Any = None  # the current xlsxwriter worksheet
        self.kinds: list[str] = []
        self.row = 0
        self.sums: list[int] = []

    def cell(self, r: int, c: int, value: Any, kind: str, bold: bool = False) -> None:
        ws = self.sheet
        if value is None or value == "":
            ws.write_blank(r, c, None)
        elif kind == "money":
            ws.write_number(r, c, int(value) / 100, self.money_bold if bold else self.money)
        elif kind == "int":
            ws.write_number(r, c, int(value))
        elif kind == "date":
            ws.write_datetime(r, c, datetime.fromisoformat(str(value)).replace(tzinfo=None), self.date)
        else:  # strings stay strings: a name such as "=1+1" must not become a formula
            ws.write_string(r, c, str(value), self.bold if bold else None)

    def start(self, name: str, columns: list[str], kinds: list[str]) -> None:
        self.sheet = self.wb.add_worksheet(name)
        self.kinds, self.sums = kinds, [0] * len(kinds)
        for c, title in enumerate(columns):
            self.sheet.write_string(0, c, title, self.bold)
        self.sheet.freeze_panes(1, 0)
        self.row = 1

    def rows(self, rows: list[list[Any]]) -> None:
        for values in rows:
            for c, (value, kind) in enumerate(zip(values, self.kinds, strict=True)):
                self.cell(self.row, c, value, kind)
                if kind == "money" and value is not None:
                    self.sums[c] += int(value)
            self.row += 1

    def totals(self, label: str) -> None:
        self.sheet.write_string(self.row, 0, label, self.bold)
        for c, kind in enumerate(self.kinds):
            if kind == "money" and c:
                self.cell(self.row, c, self.sums[c], "money", bold=True)
        self.row += 1

    def pairs(self, name: str, pairs: list[list[Any]]) -> None:
        self.sheet = self.wb.add_worksheet(name)
        self.sheet.set_column(0, 0, 28)
        self.sheet.set_column(1, 1, 24)
        for r, (label, value, kind) in enumerate(pairs):
            self.sheet.write_string(r, 0, str(label), self.bold)
            self.cell(r, 1, value, str(kind))


def write_book(path: str, stream: BinaryIO) -> int:
    import msgspec

    decode = msgspec.msgpack.Decoder().decode
    w = Writer(path)
    written = 0
    for frame in frames(stream):
        kind, *args = decode(frame)
        if kind == "sheet":
            w.start(*args)
        elif kind == "rows":
            w.rows(args[0])
            written += len(args[0])
        elif kind == "totals":
            w.totals(args[0])
        elif kind == "pairs":
            w.pairs(*args)
        else:
            raise ValueError(f"unknown frame {kind!r}")
    w.wb.close()
    return written


if __name__ == "__main__":
    write_book(sys.argv[1], sys.stdin.buffer)
