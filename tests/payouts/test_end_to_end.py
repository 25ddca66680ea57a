"""The whole money path through the real API: orders -> settlement -> payout run -> four-eyes
approval -> bank file -> bank results -> ledger verify; then a clawback after payout, netting at
the next settlement and a repayment."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text

from distnet.ledger.verify import verify
from tests.factories import auth, card_number, register, set_payout_account
from tests.orders.helpers import balances, place, refund, verify_ok
from tests.settlement.builders import days_ago


async def test_orders_to_paid_and_back(client, admin_headers, finance, session):
    root = await register(client, admin_headers, name="Root")
    a = await register(client, sponsor=root, name="A")
    b = await register(client, sponsor=a, name="B")
    for d in (root, a, b):
        await set_payout_account(client, d)
    long_ago = days_ago(20).isoformat()
    o1 = await place(client, b, "1000.00", placed_at=long_ago)
    o2 = await place(client, b, "500.00", placed_at=long_ago)
    await place(client, b, "300.00")  # still inside its return window
    await refund(client, o2, "100.00", admin_headers)
    await verify_ok(client, admin_headers)

    resp = await client.post("/api/v1/settlements", headers=finance["finance"])
    assert resp.status_code == 201, resp.text
    assert resp.json()["moved"] >= 2
    before = await balances(client, b)
    assert before["available"] != "0.00" and before["pending"] != "0.00"
    await verify_ok(client, admin_headers)

    run = await client.post(
        "/api/v1/payout-runs",
        json={"min_amount": "1.00", "note": "e2e"},
        headers={**finance["finance"], "Idempotency-Key": "e2e-1"},
    )
    assert run.status_code == 201, run.text
    run = run.json()
    assert run["item_count"] >= 2
    assert (await balances(client, b))["available"] == "0.00"
    assert (
        await client.post(f"/api/v1/payout-runs/{run['id']}/approve", headers=finance["approver"])
    ).status_code == 200
    bank = await client.get(f"/api/v1/payout-runs/{run['id']}/export?format=csv", headers=finance["finance"])
    rows = list(csv.DictReader(io.StringIO(bank.text)))
    row_b = next(r for r in rows if r["distributor_code"] == b["code"])
    assert row_b["account_reference"] == card_number(b["id"]) and row_b["amount"] == before["available"]
    results = {
        "results": [
            {
                "item_id": int(r["item_id"]),
                "status": "paid",
                "reference": f"BK{r['item_id']}",
                "amount": r["amount"],
            }
            for r in rows
        ]
    }
    done = await client.post(
        f"/api/v1/payout-runs/{run['id']}/results", json=results, headers=finance["finance"]
    )
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    after = await balances(client, b)
    assert after["paid"] == before["available"] and after["reserved"] == "0.00"
    statuses = (await client.get(f"/api/v1/commissions?beneficiary_id={b['id']}", headers=auth(b))).json()
    assert sorted(c["status"] for c in statuses["items"]) == ["paid", "paid", "pending"]
    await verify_ok(client, admin_headers)
    report = await verify(session)
    assert report.ok and "reserved_matches_payout_items" in {c.name for c in report.checks}
    await session.rollback()

    # clawback after payout: the refund of a paid order turns into debt
    await refund(client, o1, "1000.00", admin_headers)
    owed = (await balances(client, b))["owed"]
    assert owed == "100.00"  # 10% level-1 commission on 1000.00 (the default plan)
    # a repayment of part of it, then new commissions net the rest at settlement
    resp = await client.post(
        f"/api/v1/distributors/{b['id']}/repayments",
        json={"external_id": "wire-1", "amount": "40.00"},
        headers=finance["finance"],
    )
    assert resp.status_code == 201 and resp.json()["owed_after"] == "60.00"
    o4 = await place(client, b, "2000.00", placed_at=days_ago(16).isoformat())
    earned = next(c for c in o4["commissions"] if c["level"] == 1)["amount"]
    await client.post("/api/v1/settlements", headers=finance["finance"])
    final = await balances(client, b)
    expected = int(earned.replace(".", "")) - 6000  # the remaining 60.00 of debt is netted first
    assert final["owed"] == "0.00" and final["available"] == f"{expected // 100}.{expected % 100:02d}"
    await verify_ok(client, admin_headers)
    report = await verify(session)
    assert report.ok and "reserved_matches_payout_items" in {c.name for c in report.checks}
    topics = set((await session.execute(text("SELECT DISTINCT topic FROM outbox_event"))).scalars())
    assert {"commission.available", "payout.paid", "repayment.received"} <= topics
