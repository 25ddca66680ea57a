"""The XLSX bank file of a payout run, written by a child process.

    python -m distnet.payouts.xlsx_book OUT.xlsx < frames

xlsxwriter spends about 4 µs of pure Python per cell (3 s for a 100k-item run). In the process
that reads the items it would hold the event loop (and the GIL) that long, and it could not overlap
with reading and decrypting the next batch. So ``export.xlsx_stream`` starts this module as a child
process and pipes it the rows; the child writes the workbook on the other core. It imports
xlsxwriter and msgspec only and never sees the secret key: the parent decrypts.

Input on stdin: length-prefixed (4 bytes, big endian) msgpack frames. The first is the Summary
sheet, a list of ``[label, value]`` (int values are written as numbers); every following frame is a
batch of item rows ``[code, name, account, amount, currency, item_id]``. End of input closes the
workbook; exit status 0 means the file is complete.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from typing import BinaryIO

COLUMNS = ["distributor_code", "name", "account_reference", "amount", "currency", "item_id"]
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


def write_book(path: str, stream: BinaryIO) -> int:
    import msgspec
    import xlsxwriter

    decode = msgspec.msgpack.Decoder().decode
    incoming = frames(stream)
    wb = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False,
                                    "strings_to_urls": False})
    bold = wb.add_format({"bold": True})
    # summary first: in constant_memory mode each sheet is written row by row, in order
    summary = wb.add_worksheet("Summary")
    for r, (label, value) in enumerate(decode(next(incoming))):
        summary.write_string(r, 0, label, bold)
        if isinstance(value, int):
            summary.write_number(r, 1, value)
        else:
            summary.write_string(r, 1, str(value))
    items = wb.add_worksheet("Items")
    for c, name in enumerate(COLUMNS):
        items.write_string(0, c, name, bold)
    write_string, write_number = items.write_string, items.write_number
    r = 1
    for frame in incoming:
        for code, name, account, amount, currency, item_id in decode(frame):
            # strings stay strings: a name such as "=1+1" must not become a formula
            write_string(r, 0, code)
            write_string(r, 1, name)
            write_string(r, 2, account)
            write_string(r, 3, amount)
            write_string(r, 4, currency)
            write_number(r, 5, item_id)
            r += 1
    wb.close()
    return r - 1


if __name__ == "__main__":
    write_book(sys.argv[1], sys.stdin.buffer)
