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
from decimal import Decimal
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from distnet.kit.auth import SYSTEM, Principal, Role
from distnet.kit.crypto import encrypt
from distnet.payouts import export
from distnet.payouts.service import approve_run, create_run, start_export
from distnet.settlement.service import settle
from tests.settlement.builders import SECRET, add_available, add_commissions, add_distributors

NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
AWKWARD = ["=1+1", 'a & <b> "c"', "  padded  ", "中文 名字", "_x0041_", "@SUM(A1)"]


def _cell(c: ElementTree.Element) -> str:
    if c.get("t") == "inlineStr":  # as Excel reads it: _xHHHH_ is an escaped character
        text = "".join(t.text or "" for t in c.iterfind("x:is/x:t", NS))
        return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), text)
    return c.findtext("x:v", namespaces=NS) or ""


async def _collect(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _col(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)
    return sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(letters))) - 1


def _rows(book: zipfile.ZipFile, n: int) -> list[list[str]]:
    """Cell texts by position (an empty cell is not in the file at all)."""
    sheet = ElementTree.fromstring(book.read(f"xl/worksheets/sheet{n}.xml"))
    out = []
    for row in sheet.iterfind("x:sheetData/x:row", NS):
        cells = {_col(c.get("r")): _cell(c) for c in row.iterfind("x:c", NS)}
        out.append([cells.get(i, "") for i in range(max(cells) + 1)] if cells else [])
    return out


def _kinds(book: zipfile.ZipFile, n: int, row: int) -> list[str]:
    """Per cell of a row: 's' string, 'n' number (with its style index), as Excel reads them."""
    sheet = ElementTree.fromstring(book.read(f"xl/worksheets/sheet{n}.xml"))
    r = sheet.find(f"x:sheetData/x:row[@r='{row}']", NS)
    kinds = {
        _col(c.get("r")): "s" if c.get("t") == "inlineStr" else f"n{c.get('s') or ''}"
        for c in r.iterfind("x:c", NS)
    }
    return [kinds.get(i, "") for i in range(max(kinds) + 1)]


async def test_xlsx_has_every_item_of_a_multi_batch_run_as_the_csv_has_it(sessionmaker, settings):
    n = export.BATCH * 2 + 17
    async with sessionmaker() as s:
        ids = await add_distributors(s, n)
        await add_commissions(s, [{"beneficiary_id": d, "amount": 1_000 + d} for d in ids])
        for d, name in zip(ids, AWKWARD, strict=False):
            await s.execute(
                text("UPDATE payout_account SET holder_name_enc = :n WHERE distributor_id = :d"),
                {"n": encrypt(SECRET, name), "d": d},
            )
        await s.execute(
            text("UPDATE payout_account SET account_number_enc = NULL WHERE distributor_id = :d"),
            {"d": ids[-1]},
        )
        alipay = ids[1:40]
        await s.execute(
            text(
                "UPDATE payout_account SET method = 'alipay', bank_name = NULL, account_number_enc = :a "
                "WHERE distributor_id = ANY(:ids)"
            ),
            {"ids": alipay, "a": encrypt(SECRET, "13800138000")},
        )
        await s.commit()
    await settle(sessionmaker, triggered_by="test")
    async with sessionmaker() as s:
        run = await create_run(
            s, settings=settings, principal=SYSTEM, min_amount="1.00", note="batch & <note>"
        )
        await approve_run(
            s,
            principal=Principal(key_id=999_999, name="approver", roles=frozenset({Role.finance_approver})),
            run_id=run.id,
        )
        await start_export(s, principal=SYSTEM, run_id=run.id, fmt="xlsx")
        await s.commit()
    assert run.item_count == n

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*")))
    book = zipfile.ZipFile(
        io.BytesIO(await _collect(export.xlsx_stream(sessionmaker, settings.secret_key, run.id)))
    )
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*"))) <= before  # temp file removed
    workbook = book.read("xl/workbook.xml").decode()
    assert (
        workbook.index('name="Summary"') < workbook.index('name="bank_card') < workbook.index('name="alipay')
    )
    assert 'name="Skipped"' in workbook and 'name="wechat' not in workbook  # no WeChat items, no sheet
    total_gross = total_net = 0
    for sheet_no, method, count in ((2, "bank_card", n - len(alipay)), (3, "alipay", len(alipay))):
        _, columns = export.LAYOUTS[method]
        expected = list(
            csv.reader(
                io.StringIO(
                    (
                        await _collect(export.csv_stream(sessionmaker, settings.secret_key, run.id, method))
                    ).decode()
                )
            )
        )
        assert len(expected) == count + 1
        rows = _rows(book, sheet_no)
        assert rows[0] == expected[0] == [c.title for c in columns]
        money = [i for i, c in enumerate(columns) if c.kind == "money"]
        for got, want in zip(rows[1:-1], expected[1:], strict=True):
            got = got + [""] * (len(want) - len(got))  # trailing empty cells are not in the file
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                assert (Decimal(g) == Decimal(w)) if i in money else g == w, (i, got, want)
        # money and ids are numbers (money with the two-decimal style); text stays text, even "=1+1"
        kinds = _kinds(book, sheet_no, 2)
        for i, c in enumerate(columns):
            if kinds[i]:  # (an empty text, such as a missing branch, is no cell at all)
                assert kinds[i].startswith("n" if c.kind in ("money", "int") else "s"), (c, kinds)
            else:
                assert c.kind == "text", (c, kinds)
        assert len({kinds[i] for i in money}) == 1 and kinds[money[0]] != "n"
        totals = rows[-1]
        assert totals[0] == "合计 total"
        for i in money:
            assert Decimal(totals[i]) == sum(Decimal(r[i]) for r in expected[1:])
        total_gross += sum(Decimal(r[[c.field for c in columns].index("gross")]) for r in expected[1:])
        total_net += sum(Decimal(r[[c.field for c in columns].index("net")]) for r in expected[1:])
    assert not list(ElementTree.fromstring(book.read("xl/worksheets/sheet2.xml")).iter(f"{{{NS['x']}}}f"))
    holders = {r[2] for n in (2, 3) for r in _rows(book, n)}
    assert holders >= set(AWKWARD)  # literal strings, exactly
    assert _rows(book, 2)[-2][1] == ""  # no account number on file for the last item
    styles = book.read("xl/styles.xml").decode()
    assert 'formatCode="#,##0.00"' in styles

    pairs = dict(_rows(book, 1))
    assert (
        pairs["payout run"] == str(run.id) and pairs["items"] == str(n) and pairs["note"] == "batch & <note>"
    )
    assert Decimal(pairs["gross"]) == total_gross == Decimal(run.total_amount)
    assert Decimal(pairs["net paid"]) == total_net and pairs["alipay items"] == str(len(alipay))
    assert _kinds(book, 1, 4)[1].startswith("n")  # the cutoff is a date (a styled number), not text
    cutoff = float(pairs["cutoff (Asia/Shanghai)"])
    assert 40_000 < cutoff < 80_000  # an Excel serial date


async def test_a_failed_xlsx_writer_is_an_error_not_a_short_file(sessionmaker, settings, monkeypatch):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_available(s, d, 20_000)
        run = await create_run(s, settings=settings, principal=SYSTEM)
        await s.commit()
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*")))
    monkeypatch.setattr(export.sys, "executable", shutil.which("false"))  # a writer that dies at once
    with pytest.raises(RuntimeError, match="writer exited with 1"):
        await _collect(export.xlsx_stream(sessionmaker, settings.secret_key, run.id))
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "payout-run-*"))) <= before
