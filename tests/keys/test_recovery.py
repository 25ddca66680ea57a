"""A lost key recovered through a one-time code sent to a verified contact (the notify engineer's
code service): the same answer whether or not the details match, 422 with the attempts left for a
wrong code, every old key revoked, audited."""

from __future__ import annotations

import dataclasses
import re

from litestar.testing import AsyncTestClient
from sqlalchemy import text

from distnet.app import create_app
from tests.factories import auth, register
from tests.notifications.conftest import deliver_all, give_contact


async def test_recover_a_lost_key_through_the_verified_email(
    client, admin_headers, sessionmaker, session, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Lost Key")
    await give_contact(sessionmaker, notify_settings, d["id"], email="lost@example.com")
    # details that match no verified contact: the same answer, and nothing is sent
    for body in (
        {"code": d["code"], "contact": "someone@example.com"},
        {"code": "ZZZZZZZZ", "contact": "lost@example.com"},
    ):
        resp = await client.post("/api/v1/keys/recovery", json=body)
        assert resp.status_code == 202, resp.text
    same = resp.json()
    resp = await client.post(
        "/api/v1/keys/recovery", json={"code": d["code"], "contact": " Lost@Example.com "}
    )
    assert resp.status_code == 202 and resp.json() == same
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.to("lost@example.com")
    code = re.search(r"\b(\d{6})\b", mail.get_content()).group(1)
    wrong = await client.post(
        "/api/v1/keys/recovery/confirm",
        json={
            "code": d["code"],
            "contact": "lost@example.com",
            "verification_code": "000000" if code != "000000" else "111111",
        },
    )
    assert wrong.status_code == 422 and wrong.json()["attempts_left"] == 4
    resp = await client.post(
        "/api/v1/keys/recovery/confirm",
        json={"code": d["code"], "contact": "lost@example.com", "verification_code": code},
    )
    assert resp.status_code == 201, resp.text
    issued = resp.json()
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued['api_key']}"})).json()[
        "id"
    ] == d["id"]
    assert (await client.get("/api/v1/me", headers=auth(d))).status_code == 401
    # the code is consumed
    again = await client.post(
        "/api/v1/keys/recovery/confirm",
        json={"code": d["code"], "contact": "lost@example.com", "verification_code": code},
    )
    assert again.status_code == 422
    logged = await session.scalar(
        text("SELECT count(*) FROM audit_log WHERE action = 'api_key.recovered' AND subject_id = :d"),
        {"d": str(d["id"])},
    )
    assert logged == 1


async def test_no_recovery_without_a_verified_contact(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    d = await register(
        client, sponsor=root, name="No Contact", phone="+8613500000001"
    )  # given, never confirmed
    resp = await client.post("/api/v1/keys/recovery", json={"code": d["code"], "contact": "+8613500000001"})
    assert resp.status_code == 202
    resp = await client.post(
        "/api/v1/keys/recovery/confirm",
        json={"code": d["code"], "contact": "+8613500000001", "verification_code": "123456"},
    )
    assert resp.status_code == 422 and "verification_code" in resp.text
    for bad in ({"code": d["code"]}, {"code": d["code"], "contact": "x@y.z", "verification_code": "12ab56"}):
        path = "/api/v1/keys/recovery" + ("/confirm" if "verification_code" in bad else "")
        resp = await client.post(path, json=bad)
        assert resp.status_code in (400, 422) and resp.headers["content-type"].startswith(
            "application/problem+json"
        )


async def test_recovery_is_rate_limited_per_account_and_ip(
    settings, database_url, redis_url, redis_prefix, admin_headers, sessionmaker
):
    limited = dataclasses.replace(
        settings,
        notify=dataclasses.replace(
            settings.notify,
            redis_prefix=redis_prefix,
            rate_limits="key_recovery.person=2/60,key_recovery.ip=4/60,key_recovery_check.person=1/60",
        ),
    )
    app = create_app(limited, database_url=database_url, redis_url=redis_url)
    async with AsyncTestClient(app=app) as c:
        root = await register(c, admin_headers, name="Root")
        d = await register(c, sponsor=root, name="Target")
        await give_contact(sessionmaker, settings, d["id"], email="target@example.com")
        body = {"code": d["code"], "contact": "target@example.com"}
        for _ in range(2):
            assert (await c.post("/api/v1/keys/recovery", json=body)).status_code == 202
        resp = await c.post("/api/v1/keys/recovery", json=body)
        assert resp.status_code == 429 and resp.json()["code"] == "rate-limited"
        assert 0 < int(resp.headers["Retry-After"]) <= 60
        # another account from the same IP: the IP's window (4, the refused one counted) is full after one more
        assert (
            await c.post("/api/v1/keys/recovery", json={"code": root["code"], "contact": "x@example.com"})
        ).status_code == 202
        assert (
            await c.post("/api/v1/keys/recovery", json={"code": root["code"], "contact": "x@example.com"})
        ).status_code == 429
        # guessing codes: one check per window for this account, then 429 before any code is compared
        confirm = {**body, "verification_code": "000000"}
        first = await c.post("/api/v1/keys/recovery/confirm", json=confirm)
        assert first.status_code == 422
        assert (await c.post("/api/v1/keys/recovery/confirm", json=confirm)).status_code == 429
    # the two codes sent were counted; only the newest is live, and the one wrong guess is recorded
    async with sessionmaker() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT attempts, superseded_at IS NULL AS live FROM verification_code "
                    "WHERE distributor_id = :d AND purpose = 'key_recovery' ORDER BY id"
                ),
                {"d": d["id"]},
            )
        ).all()
    assert [tuple(r) for r in rows] == [(0, False), (1, True)]


async def test_a_recovered_key_revokes_every_old_key_and_the_owner_is_told(
    client, admin_headers, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Two Keys")
    await give_contact(sessionmaker, notify_settings, d["id"], email="two@example.com")
    rotated = await client.post("/api/v1/me/keys/rotate", headers=auth(d))
    assert rotated.status_code == 201
    second = {"Authorization": f"Bearer {rotated.json()['api_key']}"}
    assert (
        await client.post("/api/v1/keys/recovery", json={"code": d["code"], "contact": "two@example.com"})
    ).status_code == 202
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.to("two@example.com")
    code = re.search(r"\b(\d{6})\b", mail.get_content()).group(1)
    resp = await client.post(
        "/api/v1/keys/recovery/confirm",
        json={"code": d["code"].lower(), "contact": "two@example.com", "verification_code": code},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["revoked_prefixes"] == [rotated.json()["prefix"]] and resp.json()["roles"] == [
        "distributor"
    ]
    assert (await client.get("/api/v1/me", headers=second)).status_code == 401
    new = {"Authorization": f"Bearer {resp.json()['api_key']}"}
    assert (await client.get("/api/v1/me", headers=new)).json()["id"] == d["id"]
    async with sessionmaker() as s:
        live = await s.scalar(
            text("SELECT count(*) FROM api_key WHERE distributor_id = :d AND revoked_at IS NULL"),
            {"d": d["id"]},
        )
        audit = (
            await s.execute(
                text("SELECT actor, before, after FROM audit_log WHERE action = 'api_key.recovered'")
            )
        ).one()
    assert live == 1
    assert audit.before == {"keys": [rotated.json()["prefix"]]} and audit.after == {
        "key": resp.json()["prefix"]
    }
    # the owner is told on every channel (a security notice: it cannot be muted)
    await deliver_all(sessionmaker, notify_settings)
    notices = [m for m in mailbox.to("two@example.com") if m["Subject"] != mail["Subject"]]
    assert len(notices) == 1 and "API" in notices[0]["Subject"]
    inbox = (await client.get("/api/v1/me/notifications", headers=new)).json()["items"]
    assert [i["kind"] for i in inbox if i["kind"] == "api_key_replaced"] == ["api_key_replaced"]
