"""GET /me/export (PIPL access): every kind of record the owner has, nothing of anyone else, audited."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

from sqlalchemy import text

from tests.factories import auth, card_number, register, set_payout_account
from tests.notifications.conftest import run_consumers
from tests.orders.helpers import place, refund


async def _owner_with_everything(client, admin_headers, make_key):
    root = await register(client, admin_headers, name="Root")
    owner = await register(
        client,
        sponsor=root,
        name="陈静怡",
        phone="+8613600000001",
        device_id="owner-device",
        ip="10.9.8.7",
        payment_fingerprint="owner-pay",
        bank_account="6222-OWNER-01",
        region="east",
    )
    kid = await register(
        client, sponsor=owner, name="林小孩", phone="+8613600000002", bank_account="6222-KID-02"
    )
    other = await register(
        client,
        sponsor=root,
        name="黄他人",
        phone="+8613600000003",
        device_id="other-device",
        bank_account="6222-OTHER-03",
    )
    sold = await place(client, owner, "100.00", external_id="owner-order-1", buyer={"ref": "owner-buyer-A"})
    await refund(client, sold, "10.00", auth(owner), external_id="owner-refund-1")
    await place(client, kid, "50.00", external_id="kid-order-1", buyer={"ref": "kid-buyer-B"})
    await place(client, other, "70.00", external_id="other-order-1", buyer={"ref": "other-buyer-C"})
    # card history: loss report and a replacement card
    number = owner["card"]["number"]
    assert (await client.post(f"/api/v1/cards/{number}/loss-report", headers=auth(owner))).status_code == 200
    replaced = await client.post(f"/api/v1/cards/{number}/replacement", headers=auth(owner))
    assert replaced.status_code in (200, 201), replaced.text
    new_number = (await client.get("/api/v1/me", headers=auth(owner))).json()["card"]["number"]
    reviewer = {"Authorization": f"Bearer {await make_key('risk_reviewer', name='Reviewer Wang')}"}
    hold = await client.post(
        f"/api/v1/cards/{new_number}/holds",
        headers=reviewer,
        json={"reason": "manual", "note": "checking the refund"},
    )
    assert hold.status_code == 201, hold.text
    appeal = await client.post(
        "/api/v1/appeals",
        headers=auth(owner),
        json={"hold_id": hold.json()["id"], "statement": "my customer really returned it"},
    )
    assert appeal.status_code == 201, appeal.text
    appeal_id = appeal.json()["id"]
    other_reviewer = {"Authorization": f"Bearer {await make_key('risk_reviewer', name='Reviewer Li')}"}
    assert (
        await client.post(f"/api/v1/appeals/{appeal_id}/claim", headers=other_reviewer)
    ).status_code == 200
    resp = await client.post(
        f"/api/v1/appeals/{appeal_id}/decision",
        headers=other_reviewer,
        json={"decision": "request_info", "note": "send the return slip"},
    )
    assert resp.status_code == 200, resp.text
    resp = await client.post(
        f"/api/v1/appeals/{appeal_id}/messages", headers=auth(owner), json={"message": "slip number RS-778"}
    )
    assert resp.status_code in (200, 201), resp.text
    # the other distributor has a hold and an appeal of their own
    other_hold = await client.post(
        f"/api/v1/cards/{other['card']['number']}/holds",
        headers=reviewer,
        json={"reason": "manual", "note": "other's own hold"},
    )
    await client.post(
        "/api/v1/appeals",
        headers=auth(other),
        json={"hold_id": other_hold.json()["id"], "statement": "other's own statement"},
    )
    return owner, kid, other, number, new_number, appeal_id


async def test_export_holds_every_kind_of_record_and_nothing_of_anyone_else(
    client, admin_headers, make_key, session, sessionmaker
):
    owner, kid, other, old_number, new_number, appeal_id = await _owner_with_everything(
        client, admin_headers, make_key
    )
    # consents: given at registration, an optional one granted and withdrawn; notices from the events
    assert (
        await client.post("/api/v1/me/consents", headers=auth(owner), json={"purpose": "marketing"})
    ).status_code == 200
    assert (
        await client.post("/api/v1/me/consents/marketing/withdraw", headers=auth(owner))
    ).status_code == 200
    assert (
        await client.put(
            "/api/v1/me/notification-preferences", headers=auth(owner), json={"muted_kinds": ["rank_up"]}
        )
    ).status_code == 200
    await set_payout_account(
        client, owner, headers=admin_headers, holder_name="陈静怡", account_number=card_number(4242)
    )
    await run_consumers(sessionmaker)
    resp = await client.get("/api/v1/me/export", headers=auth(owner))
    assert resp.status_code == 200, resp.text
    assert "attachment" in resp.headers["content-disposition"]
    doc = resp.json()
    profile = doc["profile"]
    assert (
        profile["name"],
        profile["phone"],
        profile["device_id"],
        profile["ip"],
        profile["payment_fingerprint"],
        profile["bank_account"],
        profile["region"],
    ) == ("陈静怡", "+8613600000001", "owner-device", "10.9.8.7", "owner-pay", card_number(4242), "east")
    assert profile["sponsor"] == {"code": doc["profile"]["sponsor"]["code"], "name": "R*"}
    assert [c["number"] for c in doc["cards"]] == [old_number, new_number]
    assert (
        doc["cards"][0]["frozen_at"]
        and doc["cards"][0]["cancelled_at"]
        and doc["cards"][0]["replaced_by"] == new_number
    )
    assert doc["api_keys"] and all("hash" not in k for k in doc["api_keys"])
    assert [o["external_id"] for o in doc["orders"]] == ["owner-order-1"]
    assert doc["orders"][0]["buyer_ref"] == "owner-buyer-A"
    assert [r["external_id"] for r in doc["orders"][0]["refunds"]] == ["owner-refund-1"]
    levels = sorted((c["level"], c["amount"]) for c in doc["commissions"])
    assert levels == [(1, "10.00"), (2, "1.50")]  # own sale, and level 2 on the kid's sale
    assert doc["ledger"] and {p["account"] for p in doc["ledger"]} >= {"pending"}
    assert {b["account"] for b in doc["balances"]} >= {"pending", "available", "owed"}
    assert len(doc["holds"]) == 1 and doc["holds"][0]["reason"] == "manual"
    (appeal,) = doc["appeals"]
    assert appeal["id"] == appeal_id and appeal["statement"] == "my customer really returned it"
    messages = [(m["by"], m["action"], m["note"]) for m in appeal["messages"]]
    assert ("staff", "request_info", "send the return slip") in messages
    assert any(by == "you" and note == "slip number RS-778" for by, _, note in messages)
    assert any(a["action"] == "distributor.registered" for a in doc["audit"])
    # notifications: every notice, in the owner's words, on each channel it went to; codes masked
    kinds = {n["kind"] for n in doc["notifications"]}
    assert {"hold_placed", "appeal_info_requested", "payout_account_changed", "verification_code"} <= kinds, (
        kinds
    )
    hold_notice = next(n for n in doc["notifications"] if n["kind"] == "hold_placed")
    assert new_number in hold_notice["body"] and hold_notice["channel"] == "inbox" and hold_notice["sent_at"]
    code_notice = next(n for n in doc["notifications"] if n["kind"] == "verification_code")
    assert code_notice["channel"] == "sms" and "******" in code_notice["body"]
    assert not any(
        re.search(r"\b\d{6}\b", n["body"]) for n in doc["notifications"] if n["kind"] == "verification_code"
    )
    assert doc["notification_preferences"] == {
        "email_enabled": True,
        "sms_enabled": True,
        "muted_kinds": ["rank_up"],
    }
    consents = {(c["purpose"], c["withdrawn_at"] is None) for c in doc["consents"]}
    assert consents == {("terms", True), ("privacy", True), ("marketing", False)}
    assert all(c["document_version"] and c["granted_at"] for c in doc["consents"])
    # payout accounts, every version decrypted (the registration bank_account, then the card set)
    assert [(a["status"], a["account_number"]) for a in doc["payout_accounts"]] == [
        ("superseded", "6222-OWNER-01"),
        ("active", card_number(4242)),
    ]
    assert doc["payout_accounts"][1]["holder_name"] == "陈静怡" and doc["payout_accounts"][1]["resident_id"]
    assert doc["payouts"] == []
    # in the database the other two have notices and consents of their own; none are here
    others = await session.scalar(
        text("SELECT count(*) FROM notification WHERE distributor_id <> :d"), {"d": owner["id"]}
    )
    assert others > 0
    ids = {n["id"] for n in doc["notifications"]}
    assert ids == set(
        await session.scalars(
            text("SELECT id FROM notification WHERE distributor_id = :d"), {"d": owner["id"]}
        )
    )
    # nothing of anyone else: not the other distributor, not the kid beyond what the API shows, no staff names
    for leaked in (
        "黄他人",
        "+8613600000003",
        "other-device",
        "6222-OTHER-03",
        "other-order-1",
        "other-buyer-C",
        "other's own",
        other["code"],
        other["card"]["number"],
        "林小孩",
        "+8613600000002",
        "6222-KID-02",
        "kid-order-1",
        "kid-buyer-B",
        "Reviewer Wang",
        "Reviewer Li",
    ):
        assert leaked not in resp.text, leaked
    # audited
    logged = (
        await session.execute(
            text(
                "SELECT actor FROM audit_log WHERE action = 'distributor.data_exported' AND subject_id = :d"
            ),
            {"d": str(owner["id"])},
        )
    ).all()
    assert len(logged) == 1


async def test_export_as_zip_of_csvs(client, admin_headers, make_key):
    owner, *_ = await _owner_with_everything(client, admin_headers, make_key)
    resp = await client.get("/api/v1/me/export?format=zip", headers=auth(owner))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/zip")
    archive = zipfile.ZipFile(io.BytesIO(resp.content))
    names = set(archive.namelist())
    assert {
        "export.json",
        "profile.csv",
        "cards.csv",
        "orders.csv",
        "commissions.csv",
        "ledger.csv",
        "holds.csv",
        "appeals.csv",
        "notifications.csv",
        "consents.csv",
        "notification_preferences.csv",
        "payout_accounts.csv",
    } <= names
    profile = list(csv.DictReader(io.StringIO(archive.read("profile.csv").decode())))
    assert profile[0]["phone"] == "'+8613600000001"  # a leading + is kept as text, not run as a formula
    orders = list(csv.DictReader(io.StringIO(archive.read("orders.csv").decode())))
    assert [o["external_id"] for o in orders] == ["owner-order-1"]
    assert json.loads(archive.read("export.json"))["profile"]["bank_account"] == "6222-OWNER-01"


async def test_only_the_owner_exports(client, admin_headers, make_key):
    owner, *_ = await _owner_with_everything(client, admin_headers, make_key)
    finance = {"Authorization": f"Bearer {await make_key('finance')}"}
    assert (await client.get("/api/v1/me/export", headers=finance)).status_code == 403
    assert (await client.get("/api/v1/me/export?format=pdf", headers=auth(owner))).status_code in (400, 422)
