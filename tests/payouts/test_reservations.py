"""Payout items tied to what they reserved (issue 13): an item records exactly which commissions it
reserved; paid marks only those, failed returns only those; the money equation of ARCHITECTURE.md
holds through debt netting, clawbacks and repayments, and ``ledger verify`` names the distributor
and the term that disagrees."""

from __future__ import annotations

import itertools

from sqlalchemy import text

from distnet.ledger.verify import verify
from distnet.models import Order, Refund
from distnet.orders.refunds import reverse_commissions
from distnet.settlement.service import settle
from tests.payouts.test_runs import RUNS, _approved_exported
from tests.settlement.builders import add_available, add_commissions, add_distributors

_keys = itertools.count()


async def _run(client, finance):
    """A run over every available balance, approved and exported; its items by distributor."""
    run, rows = await _approved_exported(client, finance, key=f"run-{next(_keys)}", min_amount="0.01")
    return run["id"], {int(r["distributor_code"][1:]): int(r["item_id"]) for r in rows}


async def _result(client, finance, run_id, item_id, status):
    extra = {"reference": f"BANK-{item_id}"} if status == "paid" else {"reason": "account closed"}
    resp = await client.post(
        f"{RUNS}/{run_id}/results",
        json={"results": [{"item_id": item_id, "status": status, **extra}]},
        headers=finance["finance"],
    )
    assert resp.status_code == 200, resp.text


async def _balances(session, d):
    rows = await session.execute(
        text("SELECT kind, balance FROM ledger_account WHERE distributor_id = :d"), {"d": d}
    )
    return dict(rows.all())


async def _statuses(session, ids):
    rows = await session.execute(text("SELECT id, status FROM commission WHERE id = ANY(:ids)"), {"ids": ids})
    return dict(rows.all())


async def _links(session):
    rows = await session.execute(text("SELECT item_id, commission_id, amount FROM payout_item_commission"))
    return {(r.item_id, r.commission_id): r.amount for r in rows}


async def _verified(sessionmaker):
    async with sessionmaker() as s:
        report = await verify(s)
    bad = {c.name: c.examples for c in report.checks if not c.ok}
    assert not bad, bad
    return report


async def _refund(sessionmaker, settings, commission_id, commission_amount):
    """A refund of the commission's order worth ``commission_amount`` of commission (the builders'
    orders pay 10%), through the orders domain's reversal."""
    async with sessionmaker() as s:
        order_id = await s.scalar(text("SELECT order_id FROM commission WHERE id = :c"), {"c": commission_id})
        order = await s.get(Order, order_id, with_for_update=True)
        order.refunded_amount += commission_amount * 10
        refund = Refund(order_id=order.id, external_id=f"r-{next(_keys)}", amount=commission_amount * 10)
        s.add(refund)
        await s.flush()
        await reverse_commissions(s, settings, order, order.refunded_amount, refund_id=refund.id)
        await s.commit()


async def test_paying_one_run_never_marks_another_runs_commissions(client, finance, sessionmaker, session):
    """The issue's two-runs scenario: D has commission A (40.00) in run 3 and B (30.00) in run 4.
    Paying run 4 marks only B paid; run 3's item then fails and A returns to available."""
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        a = await add_available(s, d, 4_000)
        await s.commit()
    run3, items3 = await _run(client, finance)
    async with sessionmaker() as s:
        b = await add_available(s, d, 3_000)
        await s.commit()
    run4, items4 = await _run(client, finance)
    assert await _links(session) == {(items3[d], a): 4_000, (items4[d], b): 3_000}
    assert await _statuses(session, [a, b]) == {a: "reserved", b: "reserved"}
    await _verified(sessionmaker)

    await _result(client, finance, run4, items4[d], "paid")
    assert await _statuses(session, [a, b]) == {a: "reserved", b: "paid"}
    await _result(client, finance, run3, items3[d], "failed")
    assert await _statuses(session, [a, b]) == {a: "available", b: "paid"}
    bal = await _balances(session, d)
    assert (bal["available"], bal["reserved"], bal["paid"]) == (4_000, 0, 3_000)
    await _verified(sessionmaker)

    # the returned money is reserved again by the next run, with the commission it came from
    run5, items5 = await _run(client, finance)
    assert (await _links(session))[(items5[d], a)] == 4_000
    await _result(client, finance, run5, items5[d], "paid")
    assert await _statuses(session, [a, b]) == {a: "paid", b: "paid"}
    await _verified(sessionmaker)


async def test_verify_names_the_distributor_and_the_term_of_a_tampered_status(
    client, finance, sessionmaker, session
):
    async with sessionmaker() as s:
        d1, d2 = await add_distributors(s, 2)
        a = await add_available(s, d1, 4_000)
        b = await add_available(s, d2, 2_500)
        await s.commit()
    run, items = await _run(client, finance)
    await _result(client, finance, run, items[d1], "failed")
    await _result(client, finance, run, items[d2], "paid")
    await _verified(sessionmaker)

    # what the old rule did: a commission whose item failed is marked paid
    await session.execute(text("UPDATE commission SET status = 'paid' WHERE id = :a"), {"a": a})
    report = await verify(session)
    check = next(c for c in report.checks if c.name == "money_equation")
    assert not report.ok and not check.ok
    assert {(e["distributor_id"], e["term"], e["ledger"], e["commissions"]) for e in check.examples} == {
        (d1, "paid", 0, 4_000),
        (d1, "available + owed", 4_000, 0),
    }
    await session.rollback()

    # a paid commission put back to available, and a reservation's amount changed
    await session.execute(text("UPDATE commission SET status = 'available' WHERE id = :b"), {"b": b})
    await session.execute(
        text("UPDATE payout_item_commission SET amount = 1 WHERE commission_id = :a"), {"a": a}
    )
    report = await verify(session)
    bad = {c.name: c.examples for c in report.checks if not c.ok}
    assert {(e["distributor_id"], e["term"]) for e in bad["money_equation"]} == {
        (d2, "paid"),
        (d2, "available + owed"),
    }
    assert [e["item_id"] for e in bad["payout_item_commissions"]] == [items[d1]]
    await session.rollback()


async def test_the_equation_holds_through_netting_clawbacks_and_repayments(
    client, finance, sessionmaker, session, settings
):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        c0 = await add_available(s, d, 5_000)
        await s.commit()
    run, items = await _run(client, finance)
    await _result(client, finance, run, items[d], "paid")
    await _refund(sessionmaker, settings, c0, 5_000)  # clawback of paid money: owes 50.00
    assert (await _balances(session, d))["owed"] == -5_000
    await _verified(sessionmaker)

    async with sessionmaker() as s:
        [c1] = await add_commissions(s, [{"beneficiary_id": d, "amount": 3_000}])
        [c2] = await add_commissions(s, [{"beneficiary_id": d, "amount": 4_000}])
        await s.commit()
    await settle(sessionmaker)  # 70.00 settled, 50.00 netted
    bal = await _balances(session, d)
    assert (bal["available"], bal["owed"]) == (2_000, 0)
    await _verified(sessionmaker)

    run, items = await _run(client, finance)  # 20.00 reserved from 70.00 of commissions
    links = await _links(session)
    assert sorted(v for (i, _), v in links.items() if i == items[d]) == [0, 2_000]
    assert await _statuses(session, [c1, c2]) == {c1: "reserved", c2: "reserved"}
    await _refund(sessionmaker, settings, c1, 3_000)  # clawback while reserved: nothing available
    assert (await _balances(session, d))["owed"] == -3_000
    await _verified(sessionmaker)
    resp = await client.post(
        f"/api/v1/distributors/{d}/repayments",
        json={"external_id": "bank-r1", "amount": "30.00"},
        headers=finance["finance"],
    )
    assert resp.status_code == 201, resp.text
    await _verified(sessionmaker)
    await _result(client, finance, run, items[d], "failed")  # 20.00 back to available
    assert await _statuses(session, [c1, c2]) == {c1: "available", c2: "available"}
    await _verified(sessionmaker)

    run, items = await _run(client, finance)
    await _result(client, finance, run, items[d], "paid")
    assert await _statuses(session, [c0, c1, c2]) == {c0: "paid", c1: "paid", c2: "paid"}
    bal = await _balances(session, d)
    assert (bal["available"], bal["reserved"], bal["paid"], bal["owed"]) == (0, 0, 7_000, 0)
    await _verified(sessionmaker)
