"""Payout runs (invariant 5): reservation, concurrency, four eyes, state machine, export,
bank results, cancellation."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile

from sqlalchemy import text

from tests.settlement.builders import ledger_snapshot

RUNS = "/api/v1/payout-runs"


async def _bal(session, d):
    rows = await session.execute(
        text("SELECT kind, balance FROM ledger_account WHERE distributor_id = :d"), {"d": d}
    )
    return dict(rows.all())


async def _create(client, headers, key="k1", **body):
    return await client.post(RUNS, json=body, headers={**headers, "Idempotency-Key": key})


async def _approved_exported(client, finance, **body):
    run = (await _create(client, finance["finance"], **body)).json()
    assert (await client.post(f"{RUNS}/{run['id']}/approve", headers=finance["approver"])).status_code == 200
    resp = await client.get(f"{RUNS}/{run['id']}/export?format=csv", headers=finance["finance"])
    assert resp.status_code == 200
    return run, list(csv.DictReader(io.StringIO(resp.text)))


async def test_create_reserves_available_of_eligible_distributors(client, finance, payable, session):
    d = payable["ids"]
    resp = await _create(client, finance["finance"], note="november")
    assert resp.status_code == 201, resp.text
    run = resp.json()
    assert run["status"] == "draft" and run["min_amount"] == "100.00" and run["note"] == "november"
    assert run["item_count"] == 3 and run["total_amount"] == f"{(20_000 + 15_000 + 11_000) // 100}.00"
    items = (await client.get(f"{RUNS}/{run['id']}/items", headers=finance["approver"])).json()["items"]
    assert {(i["distributor_id"], i["amount"], i["status"]) for i in items} == {
        (d[0], "200.00", "reserved"),
        (d[1], "150.00", "reserved"),
        (d[4], "110.00", "reserved"),
    }
    assert (await _bal(session, d[0]))["available"] == 0 and (await _bal(session, d[0]))["reserved"] == 20_000
    assert (await _bal(session, d[2]))["available"] == 5_000  # below the minimum
    assert (await _bal(session, d[3]))["available"] == 30_000  # under a violation hold
    snap = await ledger_snapshot(session)
    assert snap["unbalanced"] == 0 and snap["accounts"] == snap["posting_sums"]
    audit = (
        await session.execute(text("SELECT action FROM audit_log WHERE subject_type = 'payout_run'"))
    ).scalars()
    assert list(audit) == ["payout_run.created"]


async def test_idempotency_key_replays_and_conflicts(client, finance, payable):
    first = await _create(client, finance["finance"], key="same", min_amount="10.00")
    again = await _create(client, finance["finance"], key="same", min_amount="10.00")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = await _create(client, finance["finance"], key="same", min_amount="20.00")
    assert other.status_code == 409 and other.json()["code"] == "idempotency-conflict"
    runs = (await client.get(RUNS, headers=finance["finance"])).json()["items"]
    assert len(runs) == 1 and runs[0]["item_count"] == 4  # min 10.00 includes the 50.00 one


async def test_two_runs_created_at_once_never_reserve_the_same_money(client, finance, payable, session):
    before = sum([(await _bal(session, d))["available"] for d in payable["ids"]])
    r1, r2 = await asyncio.gather(
        _create(client, finance["finance"], key="a", min_amount="1.00"),
        _create(client, finance["finance2"], key="b", min_amount="1.00"),
    )
    first, second = sorted([r1, r2], key=lambda r: r.status_code)
    assert (first.status_code, second.status_code) == (201, 422)
    # the second saw the first's reservations: nothing left to pay, so no empty run is kept
    assert first.json()["item_count"] == 4 and second.json()["code"] == "empty-run"
    rows = (
        await session.execute(
            text("SELECT distributor_id, count(*) AS n, sum(amount) AS s FROM payout_item GROUP BY 1")
        )
    ).all()
    assert all(r.n == 1 for r in rows)
    reserved = sum([(await _bal(session, d))["reserved"] for d in payable["ids"]])
    assert reserved == sum(r.s for r in rows) == before - 30_000  # all but the held distributor


async def test_many_concurrent_creations_at_the_service_level(sessionmaker, settings, payable, session):
    from distnet.db import session_scope
    from distnet.kit.auth import SYSTEM
    from distnet.payouts.errors import EmptyRun
    from distnet.payouts.schemas import PayoutRunView
    from distnet.payouts.service import create_run

    async def one():
        async with session_scope(sessionmaker) as s:
            return await create_run(s, settings=settings, principal=SYSTEM, min_amount="0.01")

    runs = await asyncio.gather(*(one() for _ in range(5)), return_exceptions=True)
    assert sum(isinstance(r, EmptyRun) for r in runs) == 4
    assert [r.item_count for r in runs if isinstance(r, PayoutRunView)] == [4]
    snap = await ledger_snapshot(session)
    assert snap["unbalanced"] == 0 and snap["accounts"] == snap["posting_sums"]
    assert all(b >= 0 for (d, k, _), b in snap["accounts"].items() if d is not None and k != "owed")


async def test_four_eyes_and_roles(client, finance, payable, session):
    run = (await _create(client, finance["both"])).json()
    url = f"{RUNS}/{run['id']}/approve"
    resp = await client.post(url, headers=finance["both"])  # the creator may not approve
    assert resp.status_code == 409 and resp.json()["code"] == "four-eyes"
    assert (await client.post(url, headers=finance["finance"])).status_code == 403  # not an approver
    assert (await client.post(url, headers=finance["risk"])).status_code == 403
    assert (await client.get(f"{RUNS}/{run['id']}", headers=finance["risk"])).status_code == 403
    assert (await client.get(f"{RUNS}/{run['id']}", headers=finance["approver"])).status_code == 200
    resp = await client.post(url, headers=finance["approver"])
    assert resp.status_code == 200 and resp.json()["status"] == "approved"
    assert resp.json()["approved_by"].endswith("appr-1")
    assert (await client.post(url, headers=finance["approver"])).status_code == 200  # same approver: no-op
    resp = await client.post(url, headers=finance["approver2"])
    assert resp.status_code == 409 and resp.json()["code"] == "payout-run-state"
    actions = (
        await session.execute(
            text(
                "SELECT action, before->>'status', after->>'status' FROM audit_log WHERE subject_type = 'payout_run' "
                "ORDER BY id"
            )
        )
    ).all()
    assert actions == [("payout_run.created", None, "draft"), ("payout_run.approved", "draft", "approved")]


async def test_two_approvals_at_once_one_wins(client, finance, payable, session):
    run = (await _create(client, finance["finance"])).json()
    url = f"{RUNS}/{run['id']}/approve"
    a, b = await asyncio.gather(
        client.post(url, headers=finance["approver"]), client.post(url, headers=finance["approver2"])
    )
    assert sorted([a.status_code, b.status_code]) == [200, 409]
    n = await session.scalar(text("SELECT count(*) FROM audit_log WHERE action = 'payout_run.approved'"))
    assert n == 1


async def test_cancel_draft_returns_money_and_refuses_later_states(client, finance, payable, session):
    d = payable["ids"]
    run = (await _create(client, finance["finance"])).json()
    resp = await client.post(f"{RUNS}/{run['id']}/cancel", headers=finance["finance"])
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    b = await _bal(session, d[0])
    assert b["available"] == 20_000 and b["reserved"] == 0
    assert (await client.post(f"{RUNS}/{run['id']}/cancel", headers=finance["finance"])).status_code == 409
    assert (await client.post(f"{RUNS}/{run['id']}/approve", headers=finance["approver"])).status_code == 409
    # the money is free again for the next run
    again = (await _create(client, finance["finance"], key="k2")).json()
    assert again["item_count"] == 3
    approved = again["id"]
    await client.post(f"{RUNS}/{approved}/approve", headers=finance["approver"])
    resp = await client.post(f"{RUNS}/{approved}/cancel", headers=finance["finance"])
    assert resp.status_code == 409


async def test_export_csv_and_xlsx(client, finance, payable, session):
    run = (await _create(client, finance["finance"])).json()
    url = f"{RUNS}/{run['id']}/export"
    assert (await client.get(url, headers=finance["finance"])).status_code == 409  # not approved yet
    await client.post(f"{RUNS}/{run['id']}/approve", headers=finance["approver"])
    assert (await client.get(url, headers=finance["approver"])).status_code == 403  # finance exports
    resp = await client.get(url + "?format=csv", headers=finance["finance"])
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(rows[0]) == [
        "distributor_code",
        "name",
        "method",
        "holder",
        "account_reference",
        "bank",
        "branch",
        "gross",
        "tax",
        "amount",
        "currency",
        "item_id",
    ]
    d0 = payable["ids"][0]
    row = next(r for r in rows if r["distributor_code"] == f"T{d0:07d}")
    assert row["account_reference"] == f"6222 0000 {d0:08d}" and row["amount"] == "200.00"
    assert row["gross"] == "200.00" and row["tax"] == "0.00" and row["holder"] == f"持卡人{d0}"
    assert row["currency"] == "CNY" and row["method"] == "bank_card" and len(rows) == 3
    status = await session.scalar(text("SELECT status FROM payout_run WHERE id = :r"), {"r": run["id"]})
    assert status == "exported"
    card = await client.get(url + "?format=csv&method=bank_card", headers=finance["finance"])
    lines = list(csv.reader(io.StringIO(card.text)))
    assert lines[0][:3] == ["序号", "收款账号", "收款户名"] and len(lines) == 4
    assert card.headers["content-disposition"].endswith('-bank_card.csv"')

    resp = await client.get(url + "?format=xlsx", headers=finance["finance"])
    assert resp.status_code == 200
    book = zipfile.ZipFile(io.BytesIO(resp.content))
    workbook = book.read("xl/workbook.xml").decode()
    assert 'name="Summary"' in workbook and 'name="bank_card' in workbook
    items_xml = book.read("xl/worksheets/sheet2.xml").decode()
    assert f"6222 0000 {d0:08d}" in items_xml and "<v>200</v>" in items_xml
    summary_xml = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<v>460</v>" in summary_xml  # total, a number
    actions = list(
        (
            await session.execute(
                text("SELECT action FROM audit_log WHERE subject_type = 'payout_run' ORDER BY id")
            )
        ).scalars()
    )
    assert actions[-3:] == [
        "payout_run.exported",
        "payout_run.export_downloaded",
        "payout_run.export_downloaded",
    ]
    methods = list(
        (
            await session.execute(
                text(
                    "SELECT after->>'method' FROM audit_log WHERE action LIKE 'payout_run.export%' ORDER BY id"
                )
            )
        ).scalars()
    )
    assert methods == ["all", "bank_card", "all"]
    assert (await client.get(url + "?format=pdf", headers=finance["finance"])).status_code in (400, 422)


def _results(rows, status="paid", **extra):
    return {
        "results": [
            {
                "item_id": int(r["item_id"]),
                "status": status,
                **({"reference": f"BANK-{r['item_id']}"} if status == "paid" else {"reason": "closed"}),
                **extra,
            }
            for r in rows
        ]
    }


async def test_results_paid_and_failed_once(client, finance, payable, session):
    d = payable["ids"]
    run, rows = await _approved_exported(client, finance)
    by_d = {int(r["distributor_code"][1:]): r for r in rows}
    body = {
        "results": [
            {
                "item_id": int(by_d[d[0]]["item_id"]),
                "status": "paid",
                "reference": "BANK-1",
                "amount": "200.00",
            },
            {"item_id": int(by_d[d[1]]["item_id"]), "status": "failed", "reason": "account closed"},
        ]
    }
    resp = await client.post(f"{RUNS}/{run['id']}/results", json=body, headers=finance["finance"])
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["applied"] == {
        "paid": 1,
        "failed": 1,
        "returned": 0,
        "commissions_paid": 2,
        "commissions_restored": 0,
    }
    assert report["status"] == "exported" and report["open_items"] == 1
    b0, b1 = await _bal(session, d[0]), await _bal(session, d[1])
    assert (b0["reserved"], b0["paid"], b0["available"]) == (0, 20_000, 0)
    assert (b1["reserved"], b1["paid"], b1["available"]) == (0, 0, 15_000)
    statuses = (
        await session.execute(
            text(
                "SELECT beneficiary_id, status FROM commission WHERE beneficiary_id IN (:a, :b) ORDER BY id"
            ),
            {"a": d[0], "b": d[1]},
        )
    ).all()
    assert [s for _, s in statuses] == ["paid", "paid", "available"]
    events = (
        await session.execute(
            text(
                "SELECT topic, distributor_id, payload->>'reference' FROM outbox_event WHERE topic LIKE 'payout.%' "
                "ORDER BY topic"
            )
        )
    ).all()
    assert events == [("payout.failed", d[1], None), ("payout.paid", d[0], "BANK-1")]

    before = await ledger_snapshot(session)
    await session.rollback()
    again = await client.post(f"{RUNS}/{run['id']}/results", json=body, headers=finance["finance"])
    assert (
        again.status_code == 200 and again.json()["applied"]["paid"] == 0 and again.json()["unchanged"] == 2
    )
    assert await ledger_snapshot(session) == before
    await session.rollback()

    last = {"results": [{"item_id": int(by_d[d[4]]["item_id"]), "status": "paid", "reference": "BANK-9"}]}
    resp = await client.post(f"{RUNS}/{run['id']}/results", json=last, headers=finance["finance"])
    assert resp.json()["status"] == "completed"
    actions = list(
        (
            await session.execute(
                text("SELECT action FROM audit_log WHERE subject_type = 'payout_run' ORDER BY id")
            )
        ).scalars()
    )
    assert actions[-1] == "payout_run.completed"


async def test_bad_results_are_rejected_whole_with_a_report(client, finance, payable, session):
    run, rows = await _approved_exported(client, finance)
    url = f"{RUNS}/{run['id']}/results"
    good = _results(rows)["results"]
    cases = [
        good[:2] + [{"item_id": 999_999, "status": "paid", "reference": "X"}],  # unknown item
        good[:2] + [{**good[2], "amount": "1.00"}],  # wrong amount
        [{"item_id": good[0]["item_id"], "status": "paid"}],  # no reference
        [{"item_id": good[0]["item_id"], "status": "failed"}],  # no reason
        [good[0], {**good[0], "reference": "OTHER"}],  # contradicting lines
    ]
    for results in cases:
        resp = await client.post(url, json={"results": results}, headers=finance["finance"])
        assert resp.status_code == 422, resp.text
        problem = resp.json()
        assert problem["code"] == "payout-results-rejected" and problem["problems"], problem
    assert await session.scalar(text("SELECT count(*) FROM payout_item WHERE status <> 'reserved'")) == 0
    # paid, then a file saying failed for it: refused, nothing else applied either
    await client.post(url, json={"results": good[:1]}, headers=finance["finance"])
    flip = [{"item_id": good[0]["item_id"], "status": "failed", "reason": "r"}, good[1]]
    resp = await client.post(url, json={"results": flip}, headers=finance["finance"])
    assert resp.status_code == 422 and "already paid" in resp.json()["problems"][0]["problem"]
    assert await session.scalar(text("SELECT count(*) FROM payout_item WHERE status <> 'reserved'")) == 1
    for body in (
        {},
        {"results": []},
        {"results": [{"item_id": "x", "status": "paid"}]},
        {"results": [{"item_id": 1, "status": "lost"}]},
        {"results": "no"},
    ):
        resp = await client.post(url, json=body, headers=finance["finance"])
        assert resp.status_code in (400, 422), (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")


async def test_results_before_export_are_refused(client, finance, payable):
    run = (await _create(client, finance["finance"])).json()
    resp = await client.post(
        f"{RUNS}/{run['id']}/results",
        json={"results": [{"item_id": 1, "status": "paid", "reference": "R"}]},
        headers=finance["finance"],
    )
    assert resp.status_code == 409 and resp.json()["code"] == "payout-run-state"


async def test_the_same_results_imported_twice_in_parallel_apply_once(client, finance, payable, session):
    run, rows = await _approved_exported(client, finance)
    body = _results(rows)
    url = f"{RUNS}/{run['id']}/results"
    a, b = await asyncio.gather(
        client.post(url, json=body, headers=finance["finance"]),
        client.post(url, json=body, headers=finance["finance2"]),
    )
    assert a.status_code == b.status_code == 200
    assert sorted([a.json()["applied"]["paid"], b.json()["applied"]["paid"]]) == [0, 3]
    assert await session.scalar(text("SELECT count(*) FROM outbox_event WHERE topic = 'payout.paid'")) == 3
    paid = await session.scalar(text("SELECT sum(balance) FROM ledger_account WHERE kind = 'paid'"))
    assert paid == 46_000


async def test_not_found_and_bad_ids(client, finance):
    assert (await client.get(f"{RUNS}/12345", headers=finance["finance"])).status_code == 404
    assert (await client.get(f"{RUNS}/0", headers=finance["finance"])).status_code in (400, 404, 422)
    assert (await client.post(f"{RUNS}/12345/approve", headers=finance["approver"])).status_code == 404
    resp = await client.get(f"{RUNS}?cursor=%%%", headers=finance["finance"])
    assert resp.status_code in (400, 422)
    for body in ({"min_amount": "-1"}, {"min_amount": "1.234"}, {"currency": "XXX"}, {"bogus": 1}):
        resp = await _create(client, finance["finance"], key=str(body), **body)
        assert resp.status_code == 422, (body, resp.text)
