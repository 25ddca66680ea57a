"""Finance reports: commission statement, payout run report, trial balance, debt ageing; formats
and roles."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from sqlalchemy import text

from distnet.settlement.service import settle
from tests.conftest import bearer
from tests.settlement.builders import add_available, add_commissions, add_distributors, days_ago

R = "/api/v1/reports"


@pytest.fixture
async def keys(make_key):
    return {
        "finance": bearer(await make_key("finance")),
        "approver": bearer(await make_key("finance_approver")),
        "admin": bearer(await make_key("admin")),
        "risk": bearer(await make_key("risk_admin")),
    }


async def test_commission_statement_in_three_formats(client, keys, sessionmaker, make_key):
    async with sessionmaker() as s:
        d, other = await add_distributors(s, 2)
        await add_commissions(
            s,
            [
                {"beneficiary_id": d, "amount": 1000},
                {"beneficiary_id": d, "amount": 400, "reversed": 100},
                {"beneficiary_id": d, "amount": 250, "hold_until": days_ago(-5)},
                {"beneficiary_id": other, "amount": 9999},
            ],
        )
        await s.commit()
    await settle(sessionmaker)
    url = f"{R}/commission-statement?distributor_id={d}"
    body = (await client.get(url, headers=keys["finance"])).json()
    assert [i["net"] for i in body["items"]] == ["10.00", "3.00", "2.50"]
    assert [i["status"] for i in body["items"]] == ["available", "available", "pending"]
    assert body["summary"]["available: net"] == "13.00" and body["summary"]["pending: net"] == "2.50"
    assert body["summary"]["net"] == "15.50" and body["summary"]["reversed"] == "1.00"

    resp = await client.get(url + "&format=csv", headers=keys["admin"])
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["amount"] for r in rows] == ["10.00", "4.00", "2.50"]

    resp = await client.get(url + "&format=xlsx", headers=keys["finance"])
    book = zipfile.ZipFile(io.BytesIO(resp.content))
    assert "Commission statement" in book.read("xl/worksheets/sheet1.xml").decode()
    assert "10.00" in book.read("xl/worksheets/sheet2.xml").decode()

    # a period with nothing in it
    empty = await client.get(
        url + "&from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", headers=keys["finance"]
    )
    assert empty.json()["items"] == [] and empty.json()["summary"]["commissions"] == 0
    own = {"Authorization": f"Bearer {await make_key('distributor', distributor_id=d)}"}
    for who in (own, keys["approver"], keys["risk"]):
        assert (await client.get(url, headers=who)).status_code == 403
    for bad in (
        f"{R}/commission-statement",
        f"{R}/commission-statement?distributor_id=0",
        url + "&format=pdf",
        url + "&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        url + "&from=yesterday",
    ):
        resp = await client.get(bad, headers=keys["finance"])
        assert resp.status_code in (400, 422), (bad, resp.text)
    assert (
        await client.get(f"{R}/commission-statement?distributor_id=99999", headers=keys["finance"])
    ).status_code == 404


async def test_payout_run_report(client, keys, sessionmaker, make_key):
    async with sessionmaker() as s:
        d = await add_distributors(s, 2)
        await add_available(s, d[0], 20_000)
        await add_available(s, d[1], 30_000)
        await s.commit()
    run = (await client.post("/api/v1/payout-runs", json={}, headers=keys["finance"])).json()
    body = (await client.get(f"{R}/payout-runs/{run['id']}", headers=keys["finance"])).json()
    assert body["summary"]["items"] == 2 and body["summary"]["reserved: amount"] == "500.00"
    assert [i["amount"] for i in body["items"]] == ["200.00", "300.00"]
    assert "account_reference" not in body["columns"]  # the report is no bank file
    resp = await client.get(f"{R}/payout-runs/{run['id']}?format=xlsx", headers=keys["finance"])
    assert resp.status_code == 200 and resp.content[:2] == b"PK"
    assert (await client.get(f"{R}/payout-runs/777", headers=keys["finance"])).status_code == 404


async def test_trial_balance_cancels_out(client, keys, sessionmaker):
    async with sessionmaker() as s:
        d = await add_distributors(s, 3)
        await add_commissions(s, [{"beneficiary_id": x, "amount": 1000 * (i + 1)} for i, x in enumerate(d)])
        await s.commit()
    await settle(sessionmaker)
    body = (await client.get(f"{R}/trial-balance", headers=keys["finance"])).json()
    assert body["summary"]["balanced"] is True and body["summary"]["total CNY"] == "0.00"
    by_kind = {(i["account"], i["owner"]): i for i in body["items"]}
    assert by_kind[("available", "distributors")]["balance"] == "60.00"
    assert by_kind[("commission_expense", "platform")]["balance"] == "-60.00"
    assert all(i["consistent"] for i in body["items"])
    resp = await client.get(f"{R}/trial-balance?format=csv", headers=keys["finance"])
    assert "commission_expense" in resp.text


async def _debt_at(session, d, amount, at):
    """Debt (or a credit, amount > 0) on the owed account at a given time, against expense."""
    txn = await session.scalar(
        text("INSERT INTO ledger_transaction (kind, created_at) VALUES ('test', :at) RETURNING id"),
        {"at": at},
    )
    await session.execute(
        text(
            """
        INSERT INTO ledger_posting (transaction_id, account_id, amount, created_at)
        SELECT :t, a.id, CASE WHEN a.kind = 'owed' THEN :amt ELSE -:amt END, :at FROM ledger_account a
         WHERE (a.distributor_id = :d AND a.kind = 'owed') OR (a.distributor_id IS NULL AND a.kind = 'commission_expense')
        """
        ),
        {"t": txn, "amt": amount, "at": at, "d": d},
    )


async def test_debt_ageing_buckets_first_in_first_out(client, keys, sessionmaker):
    async with sessionmaker() as s:
        d1, d2, d3 = await add_distributors(s, 3)
        await _debt_at(s, d1, -10_000, days_ago(100))
        await _debt_at(s, d1, -5_000, days_ago(45))
        await _debt_at(s, d1, -2_000, days_ago(5))
        await _debt_at(s, d1, 12_000, days_ago(1))  # repaid / netted: pays the oldest first
        await _debt_at(s, d2, -7_000, days_ago(95))
        await _debt_at(s, d3, -3_000, days_ago(70))
        await _debt_at(s, d3, 3_000, days_ago(2))  # fully repaid: not listed
        await s.commit()
    body = (await client.get(f"{R}/debt-ageing", headers=keys["finance"])).json()
    rows = {i["distributor_id"]: i for i in body["items"]}
    assert set(rows) == {d1, d2}
    assert (rows[d1]["owed"], rows[d1]["days_0_30"], rows[d1]["days_31_60"], rows[d1]["days_over_90"]) == (
        "50.00",
        "20.00",
        "30.00",
        "0.00",
    )
    assert rows[d2]["days_over_90"] == "70.00" and rows[d2]["owed"] == "70.00"
    assert body["summary"]["owed"] == "120.00" and body["summary"]["debtors"] == 2
    # seen from 40 days ago: only what existed then, aged then
    past = (
        await client.get(
            f"{R}/debt-ageing?as_of={days_ago(40).isoformat().replace('+00:00', 'Z')}",
            headers=keys["finance"],
        )
    ).json()
    prow = {i["distributor_id"]: i for i in past["items"]}
    assert (
        prow[d1]["owed"] == "150.00"
        and prow[d1]["days_31_60"] == "100.00"
        and prow[d1]["days_0_30"] == "50.00"
    )
    assert prow[d3]["days_0_30"] == "30.00" and prow[d2]["days_31_60"] == "70.00"
    resp = await client.get(f"{R}/debt-ageing?format=xlsx", headers=keys["admin"])
    assert resp.status_code == 200 and resp.content[:2] == b"PK"
    assert (await client.get(f"{R}/debt-ageing?currency=ZZZ", headers=keys["finance"])).status_code == 422
    assert (await client.get(f"{R}/debt-ageing", headers=keys["approver"])).status_code == 403
