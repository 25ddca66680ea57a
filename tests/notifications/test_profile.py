"""Consent and verified contact at registration (seed 004), profile changes confirmed by a code,
consents listed and withdrawn, the payout condition, and the registration rate limit."""

from __future__ import annotations

import dataclasses
import re

from litestar.testing import AsyncTestClient
from sqlalchemy import text

from distnet.app import create_app
from distnet.db import session_scope
from distnet.kit import outbox
from distnet.profile.service import contact_verified_for_payout
from tests.factories import auth, register
from tests.notifications.conftest import deliver_all, run_consumers

CONSENT = {"terms_version": "2026-12", "privacy_version": "2026-12"}


def _code(text_: str) -> str:
    return re.search(r"\b(\d{6})\b", text_).group(1)


async def test_self_registration_records_consent_and_confirms_contacts(
    client, admin_headers, sessionmaker, notify_settings, smtp_server, caplog
):
    mailbox, _ = smtp_server
    root = await register(client, admin_headers, name="Root")
    body = {
        "name": "Lin",
        "sponsor_code": root["code"],
        "phone": "+8613800000009",
        "email": "lin@example.com",
    }
    resp = await client.post("/api/v1/distributors", json=body)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "consent"
    resp = await client.post(
        "/api/v1/distributors", json={**body, "consent": {**CONSENT, "terms_version": "2020"}}
    )
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "consent.terms_version"
    resp = await client.post(
        "/api/v1/distributors", json={**body, "consent": {**CONSENT, "sms": True, "channel": "app"}}
    )
    assert resp.status_code == 201, resp.text
    d = resp.json()
    assert [(c["channel"], c["sent_to"]) for c in d["contact_verification"]] == [
        ("sms", "+86****0009"),
        ("email", "l***@example.com"),
    ]
    consents = (await client.get("/api/v1/me/consents", headers=auth(d))).json()["items"]
    assert [(c["purpose"], c["document_version"], c["channel"], c["required"]) for c in consents] == [
        ("terms", "2026-12", "app", True),
        ("privacy", "2026-12", "app", True),
        ("sms", "2026-12", "app", False),
    ]
    profile = (await client.get("/api/v1/me/profile", headers=auth(d))).json()
    assert profile["email_verified"] is False and profile["phone_verified"] is False

    # a notice before confirmation reaches the inbox only
    async with session_scope(sessionmaker) as s:
        await outbox.emit(
            s,
            "payout.paid",
            {"amount": 100, "currency": "CNY", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
    await run_consumers(sessionmaker)
    with caplog.at_level("INFO", logger="distnet.notifications.channels"):
        await deliver_all(sessionmaker, notify_settings)  # the two codes
    [mail] = mailbox.to("lin@example.com")
    sms = [r.getMessage() for r in caplog.records if "+8613800000009" in r.getMessage()]
    assert len(sms) == 1
    wrong = await client.post(
        "/api/v1/me/contact/verify", headers=auth(d), json={"channel": "email", "code": "12"}
    )
    assert wrong.status_code == 422 and wrong.json()["attempts_left"] == 4
    resp = await client.post(
        "/api/v1/me/contact/verify",
        headers=auth(d),
        json={"channel": "email", "code": _code(mail.get_content())},
    )
    assert resp.status_code == 200 and resp.json()["email_verified"] is True
    resp = await client.post(
        "/api/v1/me/contact/verify", headers=auth(d), json={"channel": "phone", "code": _code(sms[0])}
    )
    assert resp.status_code == 200 and resp.json()["phone_verified"] is True
    async with session_scope(sessionmaker) as s:
        await outbox.emit(
            s,
            "payout.paid",
            {"amount": 200, "currency": "CNY", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
    await run_consumers(sessionmaker)
    outcomes = await deliver_all(sessionmaker, notify_settings)
    assert sorted(outcomes.values()) == ["sent", "sent"]  # e-mail and SMS now
    assert len(mailbox.to("lin@example.com")) == 2
    async with session_scope(sessionmaker) as s:
        actions = set(
            await s.scalars(text("SELECT action FROM audit_log WHERE subject_id = :d"), {"d": str(d["id"])})
        )
    assert {"consent.given", "profile.email_verified", "profile.phone_verified"} <= actions


async def test_changing_the_email_takes_effect_when_confirmed(
    client, admin_headers, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="Mo", email="old@example.com")
    await deliver_all(sessionmaker, notify_settings)
    await client.post(
        "/api/v1/me/contact/verify",
        headers=auth(d),
        json={"channel": "email", "code": _code(mailbox.to("old@example.com")[0].get_content())},
    )
    assert (
        await client.post(
            "/api/v1/me/contact", headers=auth(d), json={"channel": "email", "value": "not-an-email"}
        )
    ).status_code == 422
    resp = await client.post(
        "/api/v1/me/contact", headers=auth(d), json={"channel": "email", "value": "new@example.com"}
    )
    assert resp.status_code == 201 and resp.json()["sent_to"] == "n***@example.com"
    await deliver_all(sessionmaker, notify_settings)
    assert (await client.get("/api/v1/me/profile", headers=auth(d))).json()["email"] == "o***@example.com"
    resp = await client.post(
        "/api/v1/me/contact/verify",
        headers=auth(d),
        json={"channel": "email", "code": _code(mailbox.to("new@example.com")[0].get_content())},
    )
    assert resp.status_code == 200 and resp.json()["email"] == "n***@example.com"
    resp = await client.patch("/api/v1/me/profile", headers=auth(d), json={"locale": "en"})
    assert resp.status_code == 200 and resp.json()["locale"] == "en"
    assert (
        await client.patch("/api/v1/me/profile", headers=auth(d), json={"locale": "fr"})
    ).status_code == 422
    async with session_scope(sessionmaker) as s:
        await outbox.emit(
            s,
            "payout.paid",
            {"amount": 300, "currency": "CNY", "distributor_id": d["id"]},
            distributor_id=d["id"],
        )
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    [mail] = [m for m in mailbox.to("new@example.com") if "Payout" in m["Subject"]]
    assert "CNY 3.00" in mail["Subject"]


async def test_optional_consents_are_withdrawable_and_audited(client, admin_headers, sessionmaker):
    d = await register(client, admin_headers, name="Wu")
    resp = await client.post("/api/v1/me/consents", headers=auth(d), json={"purpose": "marketing"})
    assert resp.status_code == 200 and "marketing" in [c["purpose"] for c in resp.json()["items"]]
    resp = await client.post("/api/v1/me/consents/terms/withdraw", headers=auth(d))
    assert resp.status_code == 409 and resp.json()["code"] == "consent-required"
    resp = await client.post("/api/v1/me/consents/marketing/withdraw", headers=auth(d))
    assert resp.status_code == 200
    marketing = [c for c in resp.json()["items"] if c["purpose"] == "marketing"]
    assert marketing[0]["withdrawn_at"] is not None
    assert (await client.post("/api/v1/me/consents/nonsense/withdraw", headers=auth(d))).status_code == 422
    async with session_scope(sessionmaker) as s:
        assert await s.scalar(text("SELECT count(*) FROM audit_log WHERE action = 'consent.withdrawn'")) == 1


async def test_verified_contact_as_a_condition_of_the_first_payout(
    client, admin_headers, sessionmaker, settings
):
    strict = dataclasses.replace(
        settings, notify=dataclasses.replace(settings.notify, require_verified_contact=True)
    )
    d = await register(client, admin_headers, name="Pay")
    async with session_scope(sessionmaker) as s:
        assert await contact_verified_for_payout(s, settings=settings, distributor_id=d["id"]) is True
        assert await contact_verified_for_payout(s, settings=strict, distributor_id=d["id"]) is False
        await s.execute(
            text("UPDATE distributor SET phone_enc = 'x', phone_verified_at = now() WHERE id = :d"),
            {"d": d["id"]},
        )
        assert await contact_verified_for_payout(s, settings=strict, distributor_id=d["id"]) is True


async def test_registration_is_rate_limited_per_ip(
    settings, database_url, redis_url, redis_prefix, admin_headers
):
    limited = dataclasses.replace(
        settings,
        notify=dataclasses.replace(
            settings.notify, rate_limits="register.ip=2/60", redis_prefix=redis_prefix
        ),
    )
    app = create_app(limited, database_url=database_url, redis_url=redis_url)
    async with AsyncTestClient(app=app) as c:
        root = await register(c, admin_headers, name="Root")
        await register(c, sponsor=root, name="A")
        resp = await c.post(
            "/api/v1/distributors", json={"name": "B", "sponsor_code": root["code"], "consent": CONSENT}
        )
        assert resp.status_code == 429 and resp.json()["code"] == "rate-limited"
        assert 0 < int(resp.headers["Retry-After"]) <= 60
