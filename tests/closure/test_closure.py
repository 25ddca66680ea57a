"""Verified closure (注销): code and reason, refusals, closing until the final payout, admin
termination of a violator, GET /me/closure, and erasure of every copy of the person's data."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.closure import repository as closure_repo
from distnet.closure import service as closure
from distnet.closure.errors import ClosureTransitionRefused
from distnet.closure.state import ClosureState, transition
from distnet.db import session_scope
from distnet.events.dispatch import dispatch_event
from distnet.events.registry import load_handlers
from distnet.events.relay import event_dict
from distnet.kit import outbox
from distnet.ledger.service import Posting, post
from distnet.ledger.verify import verify
from tests.conftest import bearer
from tests.factories import auth, close_account, closure_code, register, set_payout_account
from tests.notifications.conftest import run_consumers
from tests.orders.helpers import balances, place
from tests.settlement.builders import days_ago


async def _credit_available(sessionmaker, distributor_id: int, amount: int) -> None:
    async with session_scope(sessionmaker) as s:
        await post(
            s,
            kind="test.credit",
            postings=[
                Posting("commission_expense", -amount, None),
                Posting("available", amount, distributor_id),
            ],
        )


def test_every_closure_transition_is_named():
    S = ClosureState
    allowed = {
        (S.active, S.closing),
        (S.active, S.closed),
        (S.closing, S.closed),
        (S.closed, S.erased),
        (S.closed, S.closing),
    }
    for a in S:
        for b in S:
            if (a, b) in allowed:
                assert transition(a.value, b) == b
            else:
                try:
                    transition(a.value, b)
                except ClosureTransitionRefused:
                    continue
                raise AssertionError(f"{a} -> {b} was allowed")


async def test_owner_closes_with_code_and_reason(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Dee")
    url = f"/api/v1/distributors/{d['id']}/closure"
    assert (await client.post(url, headers=auth(d), json={"reason": "privacy"})).status_code == 422  # no code
    resp = await client.post(
        "/api/v1/me/closure", headers=auth(d), json={"code": "123456", "reason": "bored"}
    )
    assert resp.status_code == 422
    code = await closure_code(client, d)
    resp = await client.post("/api/v1/me/closure", headers=auth(d), json={"code": code, "reason": "other"})
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "reason_text"
    wrong = "000000" if code != "000000" else "111111"
    resp = await client.post("/api/v1/me/closure", headers=auth(d), json={"code": wrong, "reason": "privacy"})
    assert (
        resp.status_code == 422 and resp.json()["code"] == "code-wrong" and resp.json()["attempts_left"] == 4
    )
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert shown["state"] == "active" and shown["blockers"] == []
    resp = await client.post(
        "/api/v1/me/closure",
        headers=auth(d),
        json={"code": code, "reason": "other", "reason_text": "moving abroad"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["state"] == "closed" and body["reason"] == "other" and body["reason_text"] == "moving abroad"
    assert body["closure_waits_for_payout"] is False and body["downline_moved_to"] == root["id"]
    erase_after = datetime.fromisoformat(body["erase_after"])
    assert timedelta(days=29) < erase_after - datetime.now(UTC) <= timedelta(days=30)
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert shown["state"] == "closed" and shown["erase_after"] == body["erase_after"]


async def test_refused_with_every_reason_before_the_code_is_spent(client, admin_headers, make_key, session):
    d = await register(client, admin_headers, name="Owes")
    await session.execute(
        text("UPDATE ledger_account SET balance = -500 WHERE distributor_id=:d AND kind='owed'"),
        {"d": d["id"]},
    )
    await session.commit()
    reviewer = bearer(await make_key("risk_reviewer", name="rv"))
    await client.post(
        f"/api/v1/cards/{d['card']['number']}/holds", headers=reviewer, json={"reason": "manual"}
    )
    code = await closure_code(client, d)
    resp = await client.post("/api/v1/me/closure", headers=auth(d), json={"code": code, "reason": "privacy"})
    assert resp.status_code == 409
    assert {r["code"] for r in resp.json()["reasons"]} == {"money_owed", "active_violation_hold"}
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert {b["code"] for b in shown["blockers"]} == {"money_owed", "active_violation_hold"}
    assert await session.scalar(text("SELECT count(*) FROM verification_code WHERE used_at IS NULL")) == 1


async def test_closing_waits_for_the_final_payout_then_closes(client, admin_headers, sessionmaker):
    d = await register(client, admin_headers, name="Rich")
    await _credit_available(sessionmaker, d["id"], 12_345)
    resp = await close_account(client, d, reason="dissatisfied")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["state"] == "closing" and body["closure_waits_for_payout"] is True
    assert [w["code"] for w in body["waits_for"]] == ["money_available"] and "123.45" in body["waits_for"][0][
        "detail"
    ]
    assert body["erase_after"] is None
    card = (await client.get(f"/api/v1/cards/{d['card']['number']}", headers=admin_headers)).json()
    assert card["status"] == "cancelled"  # it left the network: nothing new accrues
    async with session_scope(sessionmaker) as s:
        assert await closure.closure_waits_for_payout(s, distributor_id=d["id"]) is True
        assert d["id"] in list(await s.scalars(text(closure_repo.CLOSING_ACCOUNTS_SQL)))
    # the final payout is paid (the ledger movement the payout run makes), and its event consumed
    async with session_scope(sessionmaker) as s:
        await post(
            s,
            kind="test.payout",
            postings=[Posting("available", -12_345, d["id"]), Posting("paid", 12_345, d["id"])],
        )
        await outbox.emit(
            s,
            "payout.paid",
            {"amount": 12_345, "currency": "CNY", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
    from distnet.events.dispatch import dispatch_event
    from distnet.events.registry import load_handlers

    async with session_scope(sessionmaker) as s:
        row = (
            await s.execute(
                text(
                    "SELECT id, topic, payload, distributor_id, created_at FROM outbox_event "
                    "WHERE topic = 'payout.paid'"
                )
            )
        ).one()
    from distnet.events.relay import event_dict

    await dispatch_event(
        sessionmaker,
        event_dict(row.id, row.topic, row.payload, row.distributor_id, row.created_at),
        handlers={
            "payout.paid": [h for h in load_handlers()["payout.paid"] if h[0] == "closure.final_payout"]
        },
    )
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert shown["state"] == "closed" and shown["erase_after"] is not None and shown["waits_for"] == []


async def test_admin_terminates_a_violator_without_a_code(client, admin_headers, make_key, sessionmaker):
    d = await register(client, admin_headers, name="Brusher")
    reviewer = bearer(await make_key("risk_reviewer", name="rv"))
    await client.post(
        f"/api/v1/cards/{d['card']['number']}/holds", headers=reviewer, json={"reason": "manual"}
    )
    url = f"/api/v1/distributors/{d['id']}/closure"
    assert (await client.post(url, headers=admin_headers, json={})).status_code == 422  # a reason is required
    resp = await client.post(
        url,
        headers=admin_headers,
        json={"reason": "other", "reason_text": "terminated: order brushing", "note": "case 7"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "closed"
    async with session_scope(sessionmaker) as s:
        after = await s.scalar(text("SELECT after FROM audit_log WHERE action = 'distributor.closed'"))
    assert (
        after["by"] == "admin" and after["violator_terminated"] is True and after["verified_by_code"] is False
    )


async def test_erasure_reaches_every_copy(client, admin_headers, make_key, sessionmaker, settings):
    d = await register(client, admin_headers, name="Erin Zhang", phone="13900000000")
    senior = bearer(await make_key("risk_admin", name="senior"))
    reviewer = bearer(await make_key("risk_reviewer", name="rv"))
    hold = (
        await client.post(
            f"/api/v1/cards/{d['card']['number']}/holds",
            headers=senior,
            json={"reason": "manual", "note": "check"},
        )
    ).json()
    appeal = await client.post(
        "/api/v1/appeals",
        headers=auth(d),
        json={"hold_id": hold["id"], "statement": "My name is Erin, call 13900000000"},
    )
    assert appeal.status_code == 201, appeal.text
    aid = appeal.json()["id"]
    await client.post(f"/api/v1/appeals/{aid}/claim", headers=reviewer)
    resp = await client.post(
        f"/api/v1/appeals/{aid}/decision",
        headers=reviewer,
        json={"decision": "approve", "note": "Erin's receipts check out"},
    )
    assert resp.status_code == 200, resp.text
    await run_consumers(sessionmaker)
    assert (await close_account(client, d, reason="privacy")).status_code == 200
    await run_consumers(sessionmaker)
    async with session_scope(sessionmaker) as s:
        assert await closure.erase_due(s) == 0  # not before the retention period
    async with session_scope(sessionmaker) as s:
        assert await closure.erase_due(s, now=datetime.now(UTC) + timedelta(days=31)) == 1
    async with session_scope(sessionmaker) as s:
        assert await closure.erase_due(s, now=datetime.now(UTC) + timedelta(days=31)) == 0
        person = (
            await s.execute(
                text("SELECT name, status, phone_enc, closure_note, code FROM distributor WHERE id = :d"),
                {"d": d["id"]},
            )
        ).one()
        texts = [
            *(await s.scalars(text("SELECT statement FROM appeal"))),
            *(await s.scalars(text("SELECT coalesce(note, '') FROM appeal_event"))),
            *(
                await s.scalars(
                    text("SELECT params::text FROM notification WHERE distributor_id = :d"), {"d": d["id"]}
                )
            ),
            *(
                await s.scalars(
                    text(
                        "SELECT coalesce(before::text, '') || coalesce(after::text, '') FROM audit_log "
                        "WHERE subject_type IN ('distributor', 'appeal')"
                    )
                )
            ),
            *(
                await s.scalars(
                    text("SELECT payload::text FROM outbox_event WHERE distributor_id = :d"), {"d": d["id"]}
                )
            ),
        ]
    assert person.name == "erased" and person.status == "erased" and person.phone_enc is None
    assert person.code == d["code"]  # ids and codes stay
    assert texts and not [t for t in texts if "Erin" in t or "13900000000" in t]
    shown = await client.get("/api/v1/me/closure", headers=auth(d))
    assert shown.status_code in (200, 401)


async def _consume(sessionmaker, prefix: str) -> None:
    """Dispatch every unpublished outbox event to the consumers whose name starts with ``prefix``."""
    handlers = {
        topic: [(name, fn) for name, fn in found if name.startswith(prefix)]
        for topic, found in load_handlers().items()
    }
    async with session_scope(sessionmaker) as s:
        rows = (
            await s.execute(
                text(
                    "UPDATE outbox_event SET published_at = now() WHERE published_at IS NULL "
                    "RETURNING id, topic, payload, distributor_id, created_at, seq"
                )
            )
        ).all()
    for r in sorted(rows, key=lambda r: r.seq):
        await dispatch_event(
            sessionmaker,
            event_dict(r.id, r.topic, r.payload, r.distributor_id, r.created_at),
            handlers=handlers,
        )


async def test_closure_final_payout_end_to_end(client, admin_headers, make_key, sessionmaker, session):
    """active -> closing (money available) -> the next run pays the last balance whatever the
    minimum -> closed when it is paid; a bank return of that payout makes it closing again, and
    the payout after that closes it for good. Through the API and the real payout run."""
    fin = bearer(await make_key("finance", name="fin"))
    approver = bearer(await make_key("finance_approver", name="appr"))
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Leaving")
    await set_payout_account(client, d)
    await place(client, d, "300.00", placed_at=days_ago(20).isoformat())
    assert (await client.post("/api/v1/settlements", headers=fin)).status_code == 201
    assert (await balances(client, d))["available"] == "30.00"

    resp = await close_account(client, d, reason="no_longer_selling")
    assert resp.status_code == 200 and resp.json()["state"] == "closing", resp.text
    assert [w["code"] for w in resp.json()["waits_for"]] == ["money_available"]

    async def run_and_result(key: str, status: str, **extra) -> int:
        # a minimum far above the balance: a closing account's final payout is paid at any amount
        run = await client.post(
            "/api/v1/payout-runs", json={"min_amount": "10000.00"}, headers={**fin, "Idempotency-Key": key}
        )
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        assert (
            await client.post(f"/api/v1/payout-runs/{run_id}/approve", headers=approver)
        ).status_code == 200
        rows = list(
            csv.DictReader(
                io.StringIO(
                    (await client.get(f"/api/v1/payout-runs/{run_id}/export?format=csv", headers=fin)).text
                )
            )
        )
        [row] = [r for r in rows if r["distributor_code"] == d["code"]]
        assert len(rows) == 1  # root's 0.00 is not due
        done = await client.post(
            f"/api/v1/payout-runs/{run_id}/results",
            headers=fin,
            json={"results": [{"item_id": int(row["item_id"]), "status": status, **extra}]},
        )
        assert done.status_code == 200, done.text
        item = (await client.get(f"/api/v1/payout-runs/{run_id}/items", headers=fin)).json()["items"][0]
        assert item["final_payout"] is True and item["gross"] == "30.00"
        return int(row["item_id"])

    item_id = await run_and_result("final-1", "paid", reference="BK-LAST")
    run_id = await session.scalar(text("SELECT run_id FROM payout_item WHERE id = :i"), {"i": item_id})
    await session.rollback()
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert shown["state"] == "closing" and shown["waits_for"] == []  # paid; the consumer closes it
    await _consume(sessionmaker, "closure.")
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert shown["state"] == "closed" and shown["erase_after"] is not None
    assert (await balances(client, d))["paid"] == "30.00"

    # the bank sends the final payout back (退票): the account has money again and waits for it
    resp = await client.post(
        f"/api/v1/payout-runs/{run_id}/results",
        headers=fin,
        json={
            "results": [
                {"item_id": item_id, "status": "returned", "reference": "RT-LAST", "reason": "account closed"}
            ]
        },
    )
    assert resp.status_code == 200 and resp.json()["applied"]["returned"] == 1, resp.text
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert shown["state"] == "closing" and shown["erase_after"] is None and shown["closed_at"] is None
    assert [w["code"] for w in shown["waits_for"]] == ["money_available"]
    assert (await balances(client, d))["available"] == "30.00"
    # the closing owner confirms the payout account again, and the next run closes the account
    await set_payout_account(client, d, headers=admin_headers, expect=200)
    await session.execute(
        text(
            "UPDATE payout_account SET cooling_until = now() WHERE distributor_id = :d "
            "AND superseded_at IS NULL"
        ),
        {"d": d["id"]},
    )
    await session.commit()
    await run_and_result("final-2", "paid", reference="BK-LAST-2")
    await _consume(sessionmaker, "closure.")
    shown = (await client.get("/api/v1/me/closure", headers=auth(d))).json()
    assert shown["state"] == "closed" and shown["waits_for"] == [] and shown["erase_after"] is not None
    states = list(
        await session.scalars(
            text(
                "SELECT after->>'status' FROM audit_log WHERE subject_id = :d AND action LIKE 'distributor.clos%' ORDER BY id"
            ),
            {"d": str(d["id"])},
        )
    )
    assert states == ["closing", "closed", "closing", "closed"]
    report = await verify(session)
    assert report.ok, [c for c in report.checks if not c.ok]
