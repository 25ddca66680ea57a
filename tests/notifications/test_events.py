"""Each event produces the inbox notice and the e-mail (a real SMTP server on loopback), once."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from distnet.db import session_scope
from distnet.kit import outbox
from tests.conftest import bearer
from tests.factories import auth, register
from tests.notifications.conftest import deliver_all, give_contact, run_consumers

# (topic, payload as its producer writes it, kind, words the e-mail must contain (en))
EVENTS = [
    (
        "payout.paid",
        {
            "run_id": 1,
            "item_id": 9,
            "amount": 123456,
            "currency": "CNY",
            "status": "paid",
            "reference": "BANK-77",
            "reason": None,
        },
        "payout_paid",
        ["CNY 1234.56", "BANK-77"],
    ),
    (
        "payout.failed",
        {
            "run_id": 1,
            "item_id": 9,
            "amount": 5000,
            "currency": "CNY",
            "status": "failed",
            "reference": None,
            "reason": "account closed",
        },
        "payout_failed",
        ["CNY 50.00", "account closed", "available balance"],
    ),
    (
        "debt.created",
        {"amount": "12.30", "commission_id": 1, "order_id": 2, "refund_id": 3, "reason": "refund_clawback"},
        "debt_created",
        ["CNY 12.30", "refund reversed"],
    ),
    (
        "repayment.received",
        {"repayment_id": 1, "external_id": "r1", "amount": 1000, "currency": "CNY", "owed_after": 230},
        "debt_repaid",
        ["CNY 10.00", "CNY 2.30"],
    ),
    (
        "rank.changed",
        {"from": "member", "to": "silver", "reason": "threshold_crossed"},
        "rank_up",
        ["member to silver"],
    ),
    (
        "rank.changed",
        {"from": "gold", "to": "silver", "reason": "periodic_evaluation"},
        "rank_down",
        ["gold to silver", "90 days"],
    ),
    (
        "payout_account.changed",
        {"account_masked": "****6789"},
        "payout_account_changed",
        ["****6789", "rotate your API key"],
    ),
    (
        "hold.lifted",
        {"hold_id": 5, "reason": "order_brushing", "outcome": "cleared"},
        "hold_lifted",
        ["order brushing", "cleared"],
    ),
    (
        "payout.returned",
        {
            "run_id": 1,
            "item_id": 9,
            "amount": 5000,
            "currency": "CNY",
            "status": "returned",
            "reference": "BK-1",
            "return_reference": "RT-1",
            "reason": "account closed at the bank",
        },
        "payout_returned",
        ["CNY 50.00", "RT-1", "account closed at the bank", "payout-account"],
    ),
]


@pytest.mark.parametrize(("topic", "payload", "kind", "words"), EVENTS, ids=[e[2] for e in EVENTS])
async def test_event_produces_inbox_notice_and_email(
    client, admin_headers, sessionmaker, notify_settings, smtp_server, topic, payload, kind, words
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="Ann")
    await give_contact(sessionmaker, notify_settings, d["id"], email="ann@example.com")
    async with session_scope(sessionmaker) as s:
        await s.execute(text("UPDATE distributor SET locale = 'en' WHERE id = :d"), {"d": d["id"]})
        await outbox.emit(s, topic, {**payload, "distributor_id": d["id"]}, distributor_id=d["id"])
    await run_consumers(sessionmaker)
    await run_consumers(sessionmaker)  # nothing new: the same event is never notified twice
    outcomes = await deliver_all(sessionmaker, notify_settings)
    assert list(outcomes.values()) == ["sent"]

    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()
    assert inbox["unread_count"] == 1
    [item] = inbox["items"]
    assert item["kind"] == kind
    [mail] = mailbox.to("ann@example.com")
    body = mail.get_content()
    assert mail["Subject"] == item["subject"]
    for word in words:
        assert word in body and word in item["body"], (word, body)
    async with session_scope(sessionmaker) as s:
        rows = (
            await s.execute(
                text(
                    "SELECT channel, status, attempts, provider FROM notification "
                    "WHERE distributor_id = :d ORDER BY channel"
                ),
                {"d": d["id"]},
            )
        ).all()
    assert [tuple(r) for r in rows] == [("email", "sent", 1, "smtp"), ("inbox", "sent", 0, None)]


async def test_chinese_is_the_default_locale(
    client, admin_headers, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="张三")
    await give_contact(sessionmaker, notify_settings, d["id"], email="zhang@example.com")
    async with session_scope(sessionmaker) as s:
        await outbox.emit(
            s,
            "payout.paid",
            {"amount": 10000, "currency": "CNY", "reference": "B1", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.to("zhang@example.com")
    assert "100.00 元" in mail["Subject"] and "已打入您的收款账户" in mail.get_content()


async def test_manual_hold_notifies_what_to_do_and_how_to_appeal(
    client, admin_headers, make_key, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="Bo")
    await give_contact(sessionmaker, notify_settings, d["id"], email="bo@example.com")
    reviewer = bearer(await make_key("risk_reviewer", name="rev"))
    resp = await client.post(
        f"/api/v1/cards/{d['card']['number']}/holds",
        headers=reviewer,
        json={"reason": "manual", "note": "documents needed"},
    )
    assert resp.status_code == 201, resp.text
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.to("bo@example.com")
    body = mail.get_content()
    assert d["card"]["number"] in body and "人工审核" in body and "POST /api/v1/appeals" in body
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()
    assert [i["kind"] for i in inbox["items"]] == ["hold_placed"]


async def test_opt_out_and_missing_consent_stop_a_channel(
    client, admin_headers, sessionmaker, notify_settings, smtp_server, caplog
):
    mailbox, _ = smtp_server
    opted_out = await register(client, admin_headers, name="Out")
    no_consent = await register(client, admin_headers, name="NoSms")
    consented = await register(client, admin_headers, name="Sms")
    unverified = await register(client, admin_headers, name="Unverified")
    await give_contact(sessionmaker, notify_settings, opted_out["id"], email="out@example.com")
    await give_contact(sessionmaker, notify_settings, no_consent["id"], phone="+8613800000001")
    await give_contact(
        sessionmaker, notify_settings, consented["id"], phone="+8613800000002", sms_consent=True
    )
    async with session_scope(sessionmaker) as s:
        await s.execute(
            text("UPDATE distributor SET email_enc = :e WHERE id = :d"),
            {"e": b"unverified", "d": unverified["id"]},
        )
    resp = await client.put(
        "/api/v1/me/notification-preferences", headers=auth(opted_out), json={"email_enabled": False}
    )
    assert resp.status_code == 200 and resp.json()["email_enabled"] is False
    async with session_scope(sessionmaker) as s:
        for d in (opted_out, no_consent, consented, unverified):
            await outbox.emit(
                s,
                "payout.paid",
                {"amount": 100, "currency": "CNY", "reference": "X", "distributor_id": d["id"]},
                distributor_id=d["id"],
            )
    await run_consumers(sessionmaker)
    with caplog.at_level("INFO", logger="distnet.notifications.channels"):
        outcomes = await deliver_all(sessionmaker, notify_settings)
    assert list(outcomes.values()) == ["sent"]  # the one consented SMS (log provider)
    assert mailbox.messages == []
    assert any("+8613800000002" in r.getMessage() for r in caplog.records)
    async with session_scope(sessionmaker) as s:
        rows = (await s.execute(text("SELECT distributor_id, channel FROM notification ORDER BY 1, 2"))).all()
    assert [tuple(r) for r in rows] == [
        (opted_out["id"], "inbox"),
        (no_consent["id"], "inbox"),
        (consented["id"], "inbox"),
        (consented["id"], "sms"),
        (unverified["id"], "inbox"),
    ]


async def test_a_kind_is_muted_per_distributor_except_security_and_legal_notices(
    client, admin_headers, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="Mu")
    await give_contact(sessionmaker, notify_settings, d["id"], email="mu@example.com")
    url = "/api/v1/me/notification-preferences"
    shown = (await client.get(url, headers=auth(d))).json()
    assert "rank_up" in shown["mutable_kinds"] and "payout_account_changed" in shown["mandatory_kinds"]
    assert not set(shown["mutable_kinds"]) & set(shown["mandatory_kinds"])
    for refused in (
        ["hold_placed"],
        ["rank_up", "payout_account_changed"],
        ["verification_code"],
        ["no_such_kind"],
    ):
        resp = await client.put(url, headers=auth(d), json={"muted_kinds": refused})
        assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "muted_kinds", resp.text
    assert (await client.get(url, headers=auth(d))).json()["muted_kinds"] == []  # nothing was saved
    resp = await client.put(url, headers=auth(d), json={"muted_kinds": ["rank_up", "payout_paid"]})
    assert resp.status_code == 200 and resp.json()["muted_kinds"] == ["payout_paid", "rank_up"]
    # another distributor's preferences are untouched
    other = await register(client, admin_headers, name="Other")
    assert (await client.get(url, headers=auth(other))).json()["muted_kinds"] == []
    async with session_scope(sessionmaker) as s:
        await outbox.emit(
            s,
            "rank.changed",
            {"from": "member", "to": "silver", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
        await outbox.emit(
            s,
            "payout.paid",
            {"amount": 100, "currency": "CNY", "reference": "M1", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
        await outbox.emit(
            s,
            "debt.created",
            {"amount": "1.00", "reason": "refund_clawback", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
        # a mandatory kind stays on every channel even if an old row lists it as muted
        await s.execute(
            text(
                "UPDATE notification_preference SET muted_kinds = muted_kinds || "
                "'{payout_account_changed}' WHERE distributor_id = :d"
            ),
            {"d": d["id"]},
        )
        await outbox.emit(
            s,
            "payout_account.changed",
            {"account_masked": "****4321", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()["items"]
    assert sorted(i["kind"] for i in inbox) == [
        "debt_created",
        "payout_account_changed",
        "payout_paid",
        "rank_up",
    ]
    mailed = sorted(m["Subject"] for m in mailbox.to("mu@example.com"))
    assert len(mailed) == 2 and any("****4321" in m.get_content() for m in mailbox.to("mu@example.com"))
    async with session_scope(sessionmaker) as s:
        emails = sorted(await s.scalars(text("SELECT kind FROM notification WHERE channel = 'email'")))
    assert emails == ["debt_created", "payout_account_changed"]


async def test_appeal_info_request_and_decision_are_notified_by_email(
    client, admin_headers, make_key, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="Ap")
    await give_contact(sessionmaker, notify_settings, d["id"], email="ap@example.com")
    async with session_scope(sessionmaker) as s:
        await s.execute(text("UPDATE distributor SET locale = 'en' WHERE id = :d"), {"d": d["id"]})
    placer = bearer(await make_key("risk_reviewer", name="placer"))
    reviewer = bearer(await make_key("risk_reviewer", name="decider"))
    hold = await client.post(
        f"/api/v1/cards/{d['card']['number']}/holds",
        headers=placer,
        json={"reason": "manual", "note": "check"},
    )
    appeal = await client.post(
        "/api/v1/appeals",
        headers=auth(d),
        json={"hold_id": hold.json()["id"], "statement": "it was a real customer"},
    )
    appeal_id = appeal.json()["id"]
    assert (await client.post(f"/api/v1/appeals/{appeal_id}/claim", headers=reviewer)).status_code == 200
    resp = await client.post(
        f"/api/v1/appeals/{appeal_id}/decision",
        headers=reviewer,
        json={"decision": "request_info", "note": "send the delivery note"},
    )
    assert resp.status_code == 200, resp.text
    await client.post(f"/api/v1/appeals/{appeal_id}/messages", headers=auth(d), json={"message": "DN-5"})
    await client.post(f"/api/v1/appeals/{appeal_id}/claim", headers=reviewer)
    resp = await client.post(
        f"/api/v1/appeals/{appeal_id}/decision",
        headers=reviewer,
        json={"decision": "approve", "note": "delivery confirmed"},
    )
    assert resp.status_code == 200, resp.text
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()["items"]
    kinds = [i["kind"] for i in inbox]
    assert {"appeal_info_requested", "appeal_decided"} <= set(kinds), kinds
    mails = {m["Subject"]: m.get_content() for m in mailbox.to("ap@example.com")}
    info = next(body for subject, body in mails.items() if "more information" in subject)
    assert "send the delivery note" in info and f"/api/v1/appeals/{appeal_id}/messages" in info
    decided = next(body for subject, body in mails.items() if "Appeal decided" in subject)
    assert "approved" in decided and "delivery confirmed" in decided and "released" in decided


async def test_closure_is_notified_by_email(
    client, admin_headers, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="Bye")
    await give_contact(sessionmaker, notify_settings, d["id"], email="bye@example.com")
    assert (await client.post("/api/v1/me/closure/code", headers=auth(d))).status_code == 201
    await deliver_all(sessionmaker, notify_settings)
    [code_mail] = mailbox.to("bye@example.com")
    code = re.search(r"\b(\d{6})\b", code_mail.get_content()).group(1)
    resp = await client.post("/api/v1/me/closure", headers=auth(d), json={"code": code, "reason": "privacy"})
    assert resp.status_code == 200 and resp.json()["state"] == "closed", resp.text
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()["items"]
    assert "account_closed" in [i["kind"] for i in inbox]
    closed = [m for m in mailbox.to("bye@example.com") if "注销" in m["Subject"]]
    assert len(closed) == 1 and resp.json()["erase_after"][:10] in closed[0].get_content()
