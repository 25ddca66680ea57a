"""Bank returns (退票): a paid item the bank sends back later. Through the API: the money and its
tax go back to the distributor's available balance in one balanced transaction, exactly the
item's commissions are available again, the payout account version needs confirmation, the owner
is told; the same return again changes nothing; ``ledger verify`` stays clean, also after a
clawback of a commission the returned item had paid; the next run pays again once the account is
confirmed, withholding the month's tax once. Also the Alipay and WeChat bank files, and verify
naming an item paid to an account in cooling-off."""

from __future__ import annotations

import csv
import io

from sqlalchemy import text

from distnet.ledger.verify import verify
from tests.factories import auth, register, set_payout_account
from tests.notifications.conftest import run_consumers
from tests.orders.helpers import balances, place, refund, verify_ok
from tests.settlement.builders import days_ago

RUNS = "/api/v1/payout-runs"


async def _run_to_paid(client, finance, key: str) -> tuple[int, list[dict[str, str]]]:
    resp = await client.post(
        RUNS, json={"min_amount": "1.00"}, headers={**finance["finance"], "Idempotency-Key": key}
    )
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    assert (await client.post(f"{RUNS}/{run_id}/approve", headers=finance["approver"])).status_code == 200
    rows = list(
        csv.DictReader(
            io.StringIO(
                (await client.get(f"{RUNS}/{run_id}/export?format=csv", headers=finance["finance"])).text
            )
        )
    )
    done = await client.post(
        f"{RUNS}/{run_id}/results",
        headers=finance["finance"],
        json={
            "results": [
                {"item_id": int(r["item_id"]), "status": "paid", "reference": f"BK{r['item_id']}"}
                for r in rows
            ]
        },
    )
    assert done.status_code == 200 and done.json()["status"] == "completed", done.text
    return run_id, rows


async def _results(client, finance, run_id, *results):
    return await client.post(
        f"{RUNS}/{run_id}/results", headers=finance["finance"], json={"results": list(results)}
    )


async def test_a_returned_payout_comes_back_to_available_once(
    client, admin_headers, finance, session, sessionmaker
):
    root = await register(client, admin_headers, name="Root")
    seller = await register(client, sponsor=root, name="Seller")
    for d in (root, seller):
        await set_payout_account(client, d)
    long_ago = days_ago(20).isoformat()
    big = await place(client, seller, "50000.00", placed_at=long_ago)  # 5,000.00 level 1: taxed 800.00
    await place(client, seller, "1000.00", placed_at=long_ago)  # 120.00: the big sale made the seller silver
    assert (await client.post("/api/v1/settlements", headers=finance["finance"])).status_code == 201
    before = await balances(client, seller)
    assert before["available"] == "5120.00"
    run_id, rows = await _run_to_paid(client, finance, "r1")
    row = next(r for r in rows if r["distributor_code"] == seller["code"])
    item_id = int(row["item_id"])
    paid = await balances(client, seller)
    assert paid["paid"] == "4300.80" and paid["available"] == "0.00"  # tax: (5,120 - 20%) x 20% = 819.20
    tax_before = await session.scalar(text("SELECT balance FROM ledger_account WHERE kind = 'tax_payable'"))
    await session.rollback()
    commissions = (
        await client.get(f"/api/v1/commissions?beneficiary_id={seller['id']}", headers=auth(seller))
    ).json()["items"]
    assert {c["status"] for c in commissions} == {"paid"}

    # a clawback after payout: the refund of part of the big order turns into debt
    await refund(client, big, "10000.00", admin_headers)
    assert (await balances(client, seller))["owed"] == "1000.00"
    await verify_ok(client, admin_headers)

    # refused whole: a return needs its reference and reason; only a paid item can come back
    bad = await _results(
        client, finance, run_id, {"item_id": item_id, "status": "returned", "reason": "closed"}
    )
    assert bad.status_code == 422 and "reference" in bad.text

    resp = await _results(
        client,
        finance,
        run_id,
        {
            "item_id": item_id,
            "status": "returned",
            "reference": "RT-1",
            "reason": "账户已销户 account closed at the bank",
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["applied"]["returned"] == 1 and resp.json()["applied"]["commissions_restored"] == 2
    assert resp.json()["status"] == "completed"
    after = await balances(client, seller)
    # the whole gross is the distributor's again (the tax withheld too); the debt stays debt
    assert (after["available"], after["paid"], after["reserved"], after["owed"]) == (
        "5120.00",
        "0.00",
        "0.00",
        "1000.00",
    )
    tax_after = await session.scalar(text("SELECT balance FROM ledger_account WHERE kind = 'tax_payable'"))
    assert tax_before - tax_after == 81_920
    item = (await session.execute(text("SELECT * FROM payout_item WHERE id = :i"), {"i": item_id})).one()
    assert (item.status, item.bank_reference, item.return_reference, item.return_reason) == (
        "returned",
        f"BK{item_id}",
        "RT-1",
        "账户已销户 account closed at the bank",
    )
    assert item.returned_at is not None
    statuses = (
        await client.get(f"/api/v1/commissions?beneficiary_id={seller['id']}", headers=auth(seller))
    ).json()["items"]
    assert {c["status"] for c in statuses} == {"available"}
    # one balanced transaction: paid -net, available +gross, tax_payable -tax
    postings = (
        await session.execute(
            text(
                "SELECT a.kind, p.amount FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id "
                "JOIN ledger_transaction t ON t.id = p.transaction_id WHERE t.kind = 'payout_returned' "
                "AND a.distributor_id IS NOT DISTINCT FROM :d OR (t.kind = 'payout_returned' AND a.distributor_id IS NULL) "
                "ORDER BY a.kind"
            ),
            {"d": seller["id"]},
        )
    ).all()
    assert sorted(map(tuple, postings)) == [
        ("available", 512_000),
        ("paid", -430_080),
        ("tax_payable", -81_920),
    ]
    # the payout account needs the owner's confirmation; the returned item keeps its version
    account = (
        await client.get(f"/api/v1/distributors/{seller['id']}/payout-account", headers=auth(seller))
    ).json()
    assert account["status"] == "needs_confirmation" and account["version_id"] != item.payout_account_id
    flagged = await session.scalar(
        text(
            "SELECT count(*) FROM audit_log WHERE action = 'payout_account.needs_confirmation' AND subject_id = :d"
        ),
        {"d": str(seller["id"])},
    )
    assert flagged == 1
    report = await verify(session)
    assert report.ok, [c for c in report.checks if not c.ok]
    await session.rollback()

    # idempotent: the return again, and the original paid file again, change nothing
    again = await _results(
        client,
        finance,
        run_id,
        {
            "item_id": item_id,
            "status": "returned",
            "reference": "RT-1",
            "reason": "账户已销户 account closed at the bank",
        },
    )
    assert (
        again.status_code == 200
        and again.json()["unchanged"] == 1
        and again.json()["applied"]["returned"] == 0
    )
    paid_file = await _results(
        client,
        finance,
        run_id,
        *[{"item_id": int(r["item_id"]), "status": "paid", "reference": f"BK{r['item_id']}"} for r in rows],
    )
    assert paid_file.status_code == 200 and paid_file.json()["unchanged"] == len(rows)
    other = await _results(
        client,
        finance,
        run_id,
        {"item_id": item_id, "status": "returned", "reference": "RT-2", "reason": "again"},
    )
    assert other.status_code == 422 and "already returned" in other.text
    assert (
        await session.scalar(text("SELECT count(*) FROM ledger_transaction WHERE kind = 'payout_returned'"))
        == 1
    )
    assert (await balances(client, seller))["available"] == "5120.00"

    # the owner is told, in words, with what to do next
    await run_consumers(sessionmaker)
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(seller))).json()["items"]
    notice = next(i for i in inbox if i["kind"] == "payout_returned")
    assert "4300.80" in notice["body"].replace(",", ""), notice
    assert "RT-1" in notice["body"] and "payout-account" in notice["body"]

    # the next run skips the unconfirmed account; once confirmed (and out of cooling-off) it pays
    # again, and the month's tax is withheld once (the returned item no longer counts as income)
    skipped = await client.post(
        RUNS, json={"min_amount": "1.00"}, headers={**finance["finance"], "Idempotency-Key": "r2"}
    )
    assert skipped.status_code == 422 and skipped.json()["code"] == "empty-run"
    assert skipped.json()["skipped"][0]["reason"] == "payout_account_unconfirmed"
    await set_payout_account(client, seller, headers=admin_headers, expect=200)
    await session.execute(
        text(
            "UPDATE payout_account SET cooling_until = now() WHERE distributor_id = :d "
            "AND superseded_at IS NULL"
        ),
        {"d": seller["id"]},
    )
    await session.commit()
    run2, rows2 = await _run_to_paid(client, finance, "r3")
    [again_row] = [r for r in rows2 if r["distributor_code"] == seller["code"]]
    item2 = (
        await session.execute(
            text("SELECT amount, tax FROM payout_item WHERE id = :i"), {"i": int(again_row["item_id"])}
        )
    ).one()
    assert (item2.amount, item2.tax) == (512_000, 81_920)
    await session.rollback()
    final = await balances(client, seller)
    assert (final["available"], final["paid"]) == ("0.00", "4300.80")
    await verify_ok(client, admin_headers)


async def test_only_a_paid_item_can_be_returned(client, admin_headers, finance, session):
    root = await register(client, admin_headers, name="Root")
    await set_payout_account(client, root)
    await place(client, root, "1000.00", placed_at=days_ago(20).isoformat())
    await client.post("/api/v1/settlements", headers=finance["finance"])
    resp = await client.post(
        RUNS, json={"min_amount": "1.00"}, headers={**finance["finance"], "Idempotency-Key": "o"}
    )
    run_id = resp.json()["id"]
    await client.post(f"{RUNS}/{run_id}/approve", headers=finance["approver"])
    await client.get(f"{RUNS}/{run_id}/export?format=csv", headers=finance["finance"])
    item_id = await session.scalar(text("SELECT id FROM payout_item WHERE run_id = :r"), {"r": run_id})
    await session.rollback()
    returned = {"item_id": item_id, "status": "returned", "reference": "RT-9", "reason": "no such account"}
    resp = await _results(client, finance, run_id, returned)
    assert resp.status_code == 422 and "reported failed" in resp.text  # never paid: a failure, not a return
    failed = await _results(
        client, finance, run_id, {"item_id": item_id, "status": "failed", "reason": "no account"}
    )
    assert failed.status_code == 200
    resp = await _results(client, finance, run_id, returned)
    assert resp.status_code == 422 and "already failed" in resp.text
    assert (
        await session.scalar(text("SELECT count(*) FROM ledger_transaction WHERE kind = 'payout_returned'"))
        == 0
    )
    await verify_ok(client, admin_headers)


async def test_alipay_and_wechat_files_and_verify_catches_a_payout_to_a_cooling_account(
    client, admin_headers, finance, session
):
    root = await register(client, admin_headers, name="Root")
    ali = await register(client, sponsor=root, name="支付宝")
    wx = await register(client, sponsor=root, name="微信")
    await set_payout_account(client, root)
    await set_payout_account(
        client,
        ali,
        method="alipay",
        account_number="13800138000",
        bank_name=None,
        bank_branch=None,
        holder_name="李支付",
    )
    openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    await set_payout_account(
        client,
        wx,
        method="wechat",
        account_number=openid,
        bank_name=None,
        bank_branch=None,
        holder_name="王微信",
    )
    for d in (ali, wx):
        await place(client, d, "1000.00", placed_at=days_ago(20).isoformat())
    await client.post("/api/v1/settlements", headers=finance["finance"])
    resp = await client.post(
        RUNS, json={"min_amount": "1.00"}, headers={**finance["finance"], "Idempotency-Key": "aw"}
    )
    run_id = resp.json()["id"]
    await client.post(f"{RUNS}/{run_id}/approve", headers=finance["approver"])
    alipay = list(
        csv.reader(
            io.StringIO(
                (
                    await client.get(
                        f"{RUNS}/{run_id}/export?format=csv&method=alipay", headers=finance["finance"]
                    )
                ).text
            )
        )
    )
    assert alipay[0][:4] == ["序号", "收款方支付宝账号", "收款方姓名", "金额"] and len(alipay) == 2
    assert alipay[1][1:4] == ["13800138000", "李支付", "100.00"]
    wechat = list(
        csv.reader(
            io.StringIO(
                (
                    await client.get(
                        f"{RUNS}/{run_id}/export?format=csv&method=wechat", headers=finance["finance"]
                    )
                ).text
            )
        )
    )
    assert (
        wechat[0][:4] == ["商家明细单号", "收款用户openid", "收款用户姓名", "转账金额"] and len(wechat) == 2
    )
    assert wechat[1][1:4] == [openid, "王微信", "100.00"]
    # verify names an item whose account version was in cooling-off when its run was created
    await session.execute(
        text("UPDATE payout_account SET cooling_until = now() + interval '1 day' WHERE distributor_id = :d"),
        {"d": wx["id"]},
    )
    report = await verify(session)
    [check] = [c for c in report.checks if c.name == "no_payout_to_a_cooling_account"]
    assert not check.ok and check.examples[0]["distributor_id"] == wx["id"]
    await session.rollback()
