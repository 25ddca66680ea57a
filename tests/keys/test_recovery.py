"""A lost key recovered through a one-time code sent to a verified contact (the notify engineer's
code service): the same answer whether or not the details match, 422 with the attempts left for a
wrong code, every old key revoked, audited."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.factories import auth, register
from tests.notifications.conftest import deliver_all, give_contact, notify_settings, redis_prefix, smtp_server  # noqa: F401


async def test_recover_a_lost_key_through_the_verified_email(client, admin_headers, sessionmaker, session,
                                                             notify_settings, smtp_server):  # noqa: F811
    mailbox, _ = smtp_server
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Lost Key")
    await give_contact(sessionmaker, notify_settings, d["id"], email="lost@example.com")
    # details that match no verified contact: the same answer, and nothing is sent
    for body in ({"code": d["code"], "contact": "someone@example.com"},
                 {"code": "ZZZZZZZZ", "contact": "lost@example.com"}):
        resp = await client.post("/api/v1/keys/recovery", json=body)
        assert resp.status_code == 202, resp.text
    same = resp.json()
    resp = await client.post("/api/v1/keys/recovery", json={"code": d["code"], "contact": " Lost@Example.com "})
    assert resp.status_code == 202 and resp.json() == same
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.to("lost@example.com")
    code = re.search(r"\b(\d{6})\b", mail.get_content()).group(1)
    wrong = await client.post("/api/v1/keys/recovery/confirm", json={
        "code": d["code"], "contact": "lost@example.com", "verification_code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 422 and wrong.json()["attempts_left"] == 4
    resp = await client.post("/api/v1/keys/recovery/confirm", json={
        "code": d["code"], "contact": "lost@example.com", "verification_code": code})
    assert resp.status_code == 201, resp.text
    issued = resp.json()
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued['api_key']}"})).json()["id"] == d["id"]
    assert (await client.get("/api/v1/me", headers=auth(d))).status_code == 401
    # the code is consumed
    again = await client.post("/api/v1/keys/recovery/confirm", json={
        "code": d["code"], "contact": "lost@example.com", "verification_code": code})
    assert again.status_code == 422
    logged = await session.scalar(text(
        "SELECT count(*) FROM audit_log WHERE action = 'api_key.recovered' AND subject_id = :d"), {"d": str(d["id"])})
    assert logged == 1


async def test_no_recovery_without_a_verified_contact(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="No Contact", phone="+8613500000001")  # given, never confirmed
    resp = await client.post("/api/v1/keys/recovery", json={"code": d["code"], "contact": "+8613500000001"})
    assert resp.status_code == 202
    resp = await client.post("/api/v1/keys/recovery/confirm", json={
        "code": d["code"], "contact": "+8613500000001", "verification_code": "123456"})
    assert resp.status_code == 422 and "verification_code" in resp.text
    for bad in ({"code": d["code"]}, {"code": d["code"], "contact": "x@y.z", "verification_code": "12ab56"}):
        path = "/api/v1/keys/recovery" + ("/confirm" if "verification_code" in bad else "")
        resp = await client.post(path, json=bad)
        assert resp.status_code in (400, 422) and resp.headers["content-type"].startswith("application/problem+json")
