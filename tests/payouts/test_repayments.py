"""Repayments of debt: idempotent by external_id, never more than owed, event for risk."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.settlement.builders import add_debt, add_distributors, ledger_snapshot


async def _owed(session, d):
    return await session.scalar(
        text("SELECT balance FROM ledger_account WHERE distributor_id = :d AND kind = 'owed'"), {"d": d}
    )


async def _debtor(sessionmaker, amount=10_000):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_debt(s, d, amount)
        await s.commit()
    return d


async def test_repayment_reduces_debt_and_emits_event(client, finance, sessionmaker, session):
    d = await _debtor(sessionmaker)
    url = f"/api/v1/distributors/{d}/repayments"
    resp = await client.post(
        url, json={"external_id": "bank-1", "amount": "40.00"}, headers=finance["finance"]
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["amount"] == "40.00" and body["owed_after"] == "60.00" and body["distributor_id"] == d
    assert await _owed(session, d) == -6_000
    event = (
        await session.execute(
            text("SELECT distributor_id, payload FROM outbox_event WHERE topic = 'repayment.received'")
        )
    ).one()
    assert (
        event.distributor_id == d
        and event.payload["owed_after"] == 6_000
        and event.payload["amount"] == 4_000
    )
    clearing = await session.scalar(
        text(
            "SELECT balance FROM ledger_account WHERE distributor_id IS NULL AND kind = 'repayment_clearing'"
        )
    )
    assert clearing == -4_000
    await session.rollback()

    # replay: same answer, nothing moves
    again = await client.post(
        url, json={"external_id": "bank-1", "amount": "40.00"}, headers=finance["finance"]
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert await _owed(session, d) == -6_000
    await session.rollback()
    # the same external id with another amount
    resp = await client.post(
        url, json={"external_id": "bank-1", "amount": "41.00"}, headers=finance["finance"]
    )
    assert resp.status_code == 409 and resp.json()["code"] == "repayment-conflict"
    # more than owed
    resp = await client.post(
        url, json={"external_id": "bank-2", "amount": "60.01"}, headers=finance["finance"]
    )
    assert resp.status_code == 422 and resp.json()["code"] == "repayment-exceeds-owed"
    assert resp.json()["owed"] == "60.00"
    # exactly what is owed: debt cleared
    resp = await client.post(
        url, json={"external_id": "bank-2", "amount": "60.00"}, headers=finance["finance"]
    )
    assert resp.status_code == 201 and resp.json()["owed_after"] == "0.00"
    assert await _owed(session, d) == 0
    snap = await ledger_snapshot(session)
    assert snap["unbalanced"] == 0 and snap["accounts"] == snap["posting_sums"]


async def test_concurrent_duplicates_apply_once(client, finance, sessionmaker, session):
    d = await _debtor(sessionmaker)
    url = f"/api/v1/distributors/{d}/repayments"
    body = {"external_id": "dup", "amount": "30.00"}
    a, b = await asyncio.gather(
        client.post(url, json=body, headers=finance["finance"]),
        client.post(url, json=body, headers=finance["finance2"]),
    )
    assert sorted([a.status_code, b.status_code]) == [200, 201]
    assert await _owed(session, d) == -7_000
    # two different repayments at once may not together exceed the debt
    r1, r2 = await asyncio.gather(
        client.post(url, json={"external_id": "x1", "amount": "50.00"}, headers=finance["finance"]),
        client.post(url, json={"external_id": "x2", "amount": "50.00"}, headers=finance["finance"]),
    )
    assert sorted([r1.status_code, r2.status_code]) == [201, 422]
    await session.rollback()
    assert await _owed(session, d) == -2_000


async def test_repayment_roles_and_bad_input(client, finance, sessionmaker, make_key):
    d = await _debtor(sessionmaker)
    url = f"/api/v1/distributors/{d}/repayments"
    ok = {"external_id": "e", "amount": "1.00"}
    distributor_key = {"Authorization": f"Bearer {await make_key('distributor', distributor_id=d)}"}
    assert (await client.post(url, json=ok, headers=distributor_key)).status_code == 403
    assert (await client.post(url, json=ok, headers=finance["approver"])).status_code == 403
    assert (await client.post(url, json=ok, headers=finance["risk"])).status_code == 403
    resp = await client.post("/api/v1/distributors/999999/repayments", json=ok, headers=finance["finance"])
    assert resp.status_code == 404
    for body in (
        {"external_id": "e"},
        {"external_id": "", "amount": "1.00"},
        {"external_id": "e", "amount": "0"},
        {"external_id": "e", "amount": "-5"},
        {"external_id": "e", "amount": "abc"},
        {"external_id": "e", "amount": "1.001"},
        {"external_id": "e" * 129, "amount": "1.00"},
        {"external_id": "e", "amount": 1},
    ):
        resp = await client.post(url, json=body, headers=finance["finance"])
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
