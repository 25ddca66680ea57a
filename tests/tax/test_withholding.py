"""Tax withheld by payout runs (劳务报酬 预扣预缴): computed when the item is created and posted to
``tax_payable`` in the same balanced transaction; two payments in one month are one income; a
failed or cancelled item gives its tax back; the monthly report for filing; the
year-end statement (JSON, XLSX, a PDF readable in Chinese); tax records kept through erasure."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pypdf
from sqlalchemy import text

from distnet.kit.auth import SYSTEM, Principal, Role
from distnet.ledger.verify import verify
from distnet.payouts.schemas import PayoutResult
from distnet.payouts.service import approve_run, create_run, import_results, start_export
from distnet.tax.service import tax_month
from tests.conftest import bearer
from tests.settlement.builders import add_available, add_distributors

YUAN = 100
APPROVER = Principal(key_id=999_999, name="approver", roles=frozenset({Role.finance_approver}))


async def _bal(s, d, kind):
    return await s.scalar(
        text("SELECT balance FROM ledger_account WHERE distributor_id IS NOT DISTINCT FROM :d AND kind = :k"),
        {"d": d, "k": kind},
    )


async def _pay_run(sessionmaker, settings, status="paid"):
    """Create, approve, export a run and give every item ``status``; returns its items."""
    async with sessionmaker() as s:
        run = await create_run(s, settings=settings, principal=SYSTEM, min_amount="1.00")
        await approve_run(s, principal=APPROVER, run_id=run.id)
        await start_export(s, principal=SYSTEM, run_id=run.id, fmt="csv")
        items = (
            await s.execute(
                text("SELECT id, distributor_id, amount, tax FROM payout_item WHERE run_id = :r ORDER BY id"),
                {"r": run.id},
            )
        ).all()
        if status:
            await import_results(
                s,
                principal=SYSTEM,
                run_id=run.id,
                results=[
                    PayoutResult(item_id=i.id, status=status, reference=f"B{i.id}", reason="closed account")
                    for i in items
                ],
            )
        await s.commit()
    return run, items


async def _verify_ok(sessionmaker):
    async with sessionmaker() as s:
        report = await verify(s)
    bad = [c for c in report.checks if not c.ok]
    assert not bad, bad
    return {c.name for c in report.checks}


async def test_the_examples_through_a_payout_run(sessionmaker, settings):
    incomes = [800, 3_000, 5_000, 30_000, 80_000]
    async with sessionmaker() as s:
        ids = await add_distributors(s, len(incomes))
        for d, income in zip(ids, incomes, strict=True):
            await add_available(s, d, income * YUAN)
        await s.commit()
    run, items = await _pay_run(sessionmaker, settings, status=None)
    assert [(i.amount // YUAN, i.tax // YUAN) for i in items] == [
        (800, 0),
        (3_000, 440),
        (5_000, 800),
        (30_000, 5_200),
        (80_000, 18_600),
    ]
    async with sessionmaker() as s:
        assert await _bal(s, None, "tax_payable") == 25_040 * YUAN
        for i in items:  # available -> reserved holds the net; the tax went to tax_payable
            assert await _bal(s, i.distributor_id, "reserved") == i.amount - i.tax
            assert await _bal(s, i.distributor_id, "available") == 0
        kinds = (
            await s.execute(
                text(
                    "SELECT t.kind, count(DISTINCT t.id) FROM ledger_posting p JOIN ledger_transaction t "
                    "ON t.id = p.transaction_id JOIN ledger_account a ON a.id = p.account_id "
                    "WHERE a.kind = 'tax_payable' GROUP BY 1"
                )
            )
        ).all()
        assert kinds == [("payout_reserved", 1)]  # in the items' own transaction
        view = (await s.execute(text("SELECT tax_month FROM payout_item LIMIT 1"))).scalar_one()
        assert view == tax_month(datetime.now(UTC), "Asia/Shanghai")
    checks = await _verify_ok(sessionmaker)
    assert {"tax_payable_matches_items", "no_payout_to_a_cooling_account"} <= checks


async def test_two_payments_in_a_month_are_one_income_and_a_failed_item_gives_its_tax_back(
    sessionmaker, settings, client, make_key
):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_available(s, d, 3_000 * YUAN)
        await s.commit()
    _, [first] = await _pay_run(sessionmaker, settings)
    assert first.tax == 440 * YUAN
    async with sessionmaker() as s:
        await add_available(s, d, 27_000 * YUAN)
        await s.commit()
    # the month's total is 30,000: tax 5,200, of which 440 was withheld already
    _, [second] = await _pay_run(sessionmaker, settings, status="failed")
    assert second.tax == 4_760 * YUAN
    async with sessionmaker() as s:
        assert await _bal(s, None, "tax_payable") == 440 * YUAN  # the failed item's tax reversed
        assert await _bal(s, d, "available") == 27_000 * YUAN  # its whole gross is back
        assert await _bal(s, d, "paid") == 2_560 * YUAN
    # the next run in the month counts only items not failed: the same 4,760 again
    _, [third] = await _pay_run(sessionmaker, settings)
    assert third.tax == 4_760 * YUAN
    await _verify_ok(sessionmaker)
    fin = bearer(await make_key("finance", name="fin"))
    month = tax_month(datetime.now(UTC), "Asia/Shanghai").strftime("%Y-%m")
    report = (await client.get(f"/api/v1/reports/tax?month={month}", headers=fin)).json()
    [row] = report["items"]
    assert (row["gross"], row["tax"], row["net"], row["payments"]) == ("30000.00", "5200.00", "24800.00", 2)
    assert row["name"] == f"持卡人{d}" and row["resident_id"] == "110101199003070011"
    resp = await client.get(f"/api/v1/reports/tax?month={month}&format=csv", headers=fin)
    assert "110101199003070011" in resp.text and "5200.00" in resp.text
    resp = await client.get(f"/api/v1/reports/tax?month={month}&format=xlsx", headers=fin)
    assert resp.status_code == 200 and zipfile.ZipFile(io.BytesIO(resp.content)).testzip() is None
    # finance only
    approver = bearer(await make_key("finance_approver", name="appr"))
    assert (await client.get(f"/api/v1/reports/tax?month={month}", headers=approver)).status_code == 403
    assert (await client.get("/api/v1/reports/tax?month=2026-13", headers=fin)).status_code in (400, 422)


async def test_year_end_statement_json_xlsx_and_a_chinese_pdf(sessionmaker, settings, client, make_key):
    async with sessionmaker() as s:
        [d, other] = await add_distributors(s, 2)
        await add_available(s, d, 30_000 * YUAN)
        await s.commit()
    await _pay_run(sessionmaker, settings)
    key = await make_key("distributor", name="owner", distributor_id=d)
    owner = bearer(key)
    year = tax_month(datetime.now(UTC), "Asia/Shanghai").year
    month = tax_month(datetime.now(UTC), "Asia/Shanghai").strftime("%Y-%m")
    url = f"/api/v1/distributors/{d}/tax-statements/{year}"
    st = (await client.get(url, headers=owner)).json()
    assert len(st["months"]) == 12 and (st["gross"], st["tax"], st["net"]) == (
        "30000.00",
        "5200.00",
        "24800.00",
    )
    [paid_month] = [m for m in st["months"] if m["payments"]]
    assert paid_month["month"] == month and paid_month["tax"] == "5200.00"
    assert st["resident_id"] == "****0011" and st["payee_name"] == f"持卡人{d}"
    book = zipfile.ZipFile(io.BytesIO((await client.get(url + "?format=xlsx", headers=owner)).content))
    assert "<v>5200</v>" in book.read("xl/worksheets/sheet1.xml").decode()
    resp = await client.get(url + "?format=pdf", headers=owner)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
    pdf_text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(resp.content)).pages)
    assert "个人所得税" in pdf_text and "扣缴义务人" in pdf_text and f"持卡人{d}" in pdf_text
    assert "30000.00" in pdf_text and "5200.00" in pdf_text and "24800.00" in pdf_text
    # another distributor: 404; finance may read it
    assert (
        await client.get(url, headers=bearer(await make_key("distributor", distributor_id=other)))
    ).status_code == 404
    assert (await client.get(url, headers=bearer(await make_key("finance")))).status_code == 200


async def test_erasure_keeps_the_tax_records_for_finance_only(sessionmaker, settings, client, make_key):
    from distnet.network.service import erase_due_personal_data, purge_expired_tax_identities

    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_available(s, d, 3_000 * YUAN)
        await s.commit()
    await _pay_run(sessionmaker, settings)
    async with sessionmaker() as s:
        await s.execute(
            text(
                "UPDATE distributor SET status = 'closed', closed_at = now(), "
                "erase_after = now() - interval '1 day' WHERE id = :d"
            ),
            {"d": d},
        )
        assert await erase_due_personal_data(s, settings=settings) == 1
        await s.commit()
        acct = (
            await s.execute(
                text(
                    "SELECT status, account_number_enc, resident_id_enc FROM payout_account "
                    "WHERE distributor_id = :d"
                ),
                {"d": d},
            )
        ).one()
        assert tuple(acct) == ("erased", None, None)
        until = await s.scalar(
            text("SELECT retain_until FROM tax_identity WHERE distributor_id = :d"), {"d": d}
        )
        assert timedelta(days=3650) <= until - datetime.now(UTC) <= timedelta(days=3654)
    fin = bearer(await make_key("finance", name="fin"))
    month = tax_month(datetime.now(UTC), "Asia/Shanghai").strftime("%Y-%m")
    [row] = (await client.get(f"/api/v1/reports/tax?month={month}", headers=fin)).json()["items"]
    assert (
        row["name"] == f"持卡人{d}" and row["resident_id"] == "110101199003070011" and row["tax"] == "440.00"
    )
    async with sessionmaker() as s:
        assert await purge_expired_tax_identities(s) == 0
        assert await purge_expired_tax_identities(s, now=datetime.now(UTC) + timedelta(days=3700)) == 1
        await s.commit()
    [row] = (await client.get(f"/api/v1/reports/tax?month={month}", headers=fin)).json()["items"]
    assert row["name"] == "" and row["resident_id"] == ""


async def test_tax_tables_are_versioned_and_checked(client, admin_headers, make_key, sessionmaker, settings):
    fin = bearer(await make_key("finance", name="fin"))
    tables = (await client.get("/api/v1/tax-tables", headers=fin)).json()["items"]
    assert [(t["version"], t["in_force"]) for t in tables] == [(1, True)]
    rules = tables[0]["rules"]
    bad = await client.post(
        "/api/v1/tax-tables",
        headers=admin_headers,
        json={"name": "x", "effective_from": "2020-01-15", "rules": rules},
    )
    assert bad.status_code == 422 and "effective_from" in bad.text
    bad = await client.post(
        "/api/v1/tax-tables",
        headers=admin_headers,
        json={"name": "x", "effective_from": "2020-01-01", "rules": {**rules, "brackets": []}},
    )
    assert bad.status_code == 422 and "rules" in bad.text
    flat = {
        **rules,
        "deduction": {"threshold": 0, "fixed": 0, "rate_bps": 0},
        "brackets": [{"up_to": None, "rate_bps": 1000, "quick_deduction": 0}],
    }
    resp = await client.post(
        "/api/v1/tax-tables",
        headers=admin_headers,
        json={"name": "flat 10% (test)", "effective_from": "2020-01-01", "rules": flat},
    )
    assert resp.status_code == 201 and resp.json()["version"] == 2
    assert (await client.post("/api/v1/tax-tables", headers=fin, json={})).status_code == 403
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_available(s, d, 1_000 * YUAN)
        await s.commit()
    _, [item] = await _pay_run(sessionmaker, settings, status=None)
    assert item.tax == 100 * YUAN  # the newest version in force for the month applies


async def test_reports_withheld_forfeited_and_payouts_by_month(sessionmaker, settings, client, make_key):
    from tests.settlement.builders import add_hold

    async with sessionmaker() as s:
        [d, held] = await add_distributors(s, 2)
        await add_available(s, d, 5_000 * YUAN)
        hold = await add_hold(s, held, "order_brushing")
        cid = await add_available(s, held, 700 * YUAN)
        await s.execute(
            text("UPDATE commission SET status = 'withheld', withheld_hold_id = :h WHERE id = :c"),
            {"h": hold, "c": cid},
        )
        await s.commit()
    await _pay_run(sessionmaker, settings)
    fin = bearer(await make_key("finance", name="fin"))
    month = tax_month(datetime.now(UTC), "Asia/Shanghai").strftime("%Y-%m")
    body = (await client.get("/api/v1/reports/payouts-by-month", headers=fin)).json()
    assert body["items"] == [
        {"month": month, "status": "paid", "items": 1, "gross": "5000.00", "tax": "800.00", "net": "4200.00"}
    ]
    body = (await client.get("/api/v1/reports/withheld", headers=fin)).json()
    assert body["items"] == [
        {"kind": "withheld", "reason": "order_brushing", "month": month, "commissions": 1, "amount": "700.00"}
    ]
    for fmt in ("csv", "xlsx"):
        for name in ("withheld", "payouts-by-month"):
            resp = await client.get(f"/api/v1/reports/{name}?format={fmt}", headers=fin)
            assert resp.status_code == 200 and len(resp.content) > 20
