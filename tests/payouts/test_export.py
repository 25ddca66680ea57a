"""Bank files of a run larger than one export batch: the XLSX (written by a child process) has
every item, exactly as the CSV has it, and awkward names stay literal strings."""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import shutil
import tempfile
import zipfile
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from distnet.kit.auth import SYSTEM, Principal, Role
from distnet.payouts import export
from distnet.payouts.service import approve_run, create_run, start_export
from distnet.settlement.service import settle
from tests.settlement.builders import add_available, add_commissions, add_distributors

NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
AWKWARD = ["=1+1", "a & <b> \"c\"", "  padded  ", "中文 名字", "_x0041_", "@SUM(A1)"]


def _cell(c: ElementTree.Element) -> str:
    if c.get("t") == "inlineStr":  # as Excel reads it: _xHHHH_ is an escaped character
        text = "".join(t.text or "" for t in c.iterfind("x:is/x:t", NS))
        return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), text)
    return c.findtext("x:v", namespaces=NS) or ""


async def _collect(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_xlsx_has_every_item_of_a_multi_batch_run_as_the_csv_has_it(sessionmaker, settings):
    n = export.BATCH * 2 + 17
    async with sessionmaker() as s:
        ids = await add_distributors(s, n)
        await add_commissions(s, [{"beneficiary_id": d, "amount": 1_000 + d} for d in ids])
        for d, name in zip(ids, AWKWARD, strict=False):
            await s.execute(text("UPDATE distributor SET name = :n WHERE id = :d"), {"n": name, "d": d})
        await s.execute(text("UPDATE distributor SET bank_account_enc = NULL WHERE id = :d"), {"d": ids[-1]})
        await s.commit()
    await settle(sessionmaker, triggered_by="test")
    async with sessionmaker() as s:
        run = await create_run(s, settings, SYSTEM, min_amount="1.00", note="batch & <note>")
        await approve_run(s, Principal(key_id=999_999, name="approver", roles=frozenset({Role.finance_approver})),
                          run["id"])
        await start_export(s, SYSTEM, run["id"], "xlsx")
        await s.commit()
    assert run["item_count"] == n

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*")))
    book = zipfile.ZipFile(io.BytesIO(await _collect(export.xlsx_stream(sessionmaker, settings.secret_key,
                                                                         run["id"]))))
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*"))) <= before  # temp file removed
    expected = list(csv.reader(io.StringIO(
        (await _collect(export.csv_stream(sessionmaker, settings.secret_key, run["id"]))).decode())))
    assert len(expected) == n + 1

    sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet2.xml"))
    rows = [[_cell(c) for c in row.iterfind("x:c", NS)] for row in sheet.iterfind("x:sheetData/x:row", NS)]
    assert rows == expected  # header, then every item in id order, the same text
    strings = {c.get("r")[0] for c in sheet.iterfind("x:sheetData/x:row[@r!='1']/x:c", NS)
               if c.get("t") == "inlineStr"}
    assert strings == {"A", "B", "C", "D", "E"}  # below the header, item_id (F) is the only number
    assert not list(sheet.iter(f"{{{NS['x']}}}f"))  # no formulas, even for "=1+1"
    assert {r[1] for r in rows} >= set(AWKWARD)
    assert rows[-1][2] == ""  # no account reference on file

    summary = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    pairs = dict([_cell(c) for c in row.iterfind("x:c", NS)] for row in summary.iterfind("x:sheetData/x:row", NS))
    assert pairs["payout run"] == str(run["id"]) and pairs["items"] == str(n)
    assert pairs["total amount"] == run["total_amount"] and pairs["note"] == "batch & <note>"


async def test_a_failed_xlsx_writer_is_an_error_not_a_short_file(sessionmaker, settings, monkeypatch):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_available(s, d, 20_000)
        run = await create_run(s, settings, SYSTEM)
        await s.commit()
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*")))
    monkeypatch.setattr(export.sys, "executable", shutil.which("false"))  # a writer that dies at once
    with pytest.raises(RuntimeError, match="writer exited with 1"):
        await _collect(export.xlsx_stream(sessionmaker, settings.secret_key, run["id"]))
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*"))) <= before
