"""One-time codes: 6 digits, hashed at rest, 10 minutes, 5 attempts then locked for an hour; rate
limits per IP and per person in Redis."""

from __future__ import annotations

import re

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from distnet.db import session_scope
from distnet.kit.ratelimit import Limit, RateLimited, RateLimiter
from distnet.verification.errors import CodeExpired, CodeLocked, CodeMissing, CodeWrong, NoVerifiedContact
from distnet.verification.service import check_code, issue_code
from tests.factories import auth, register
from tests.notifications.conftest import deliver_all, give_contact


async def _issue(sessionmaker, settings, distributor_id, purpose="closure", **kw):
    async with session_scope(sessionmaker) as s:
        return await issue_code(s, settings=settings, distributor_id=distributor_id, purpose=purpose, **kw)


async def _check(sessionmaker, settings, distributor_id, code, purpose="closure", **kw):
    async with session_scope(sessionmaker) as s:
        return await check_code(
            s, settings=settings, distributor_id=distributor_id, purpose=purpose, code=code, **kw
        )


async def test_code_by_email_is_hashed_at_rest_and_used_once(
    client, admin_headers, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    d = await register(client, admin_headers, name="Ann")
    await give_contact(sessionmaker, notify_settings, d["id"], email="ann@example.com")
    issued = await _issue(sessionmaker, notify_settings, d["id"])
    assert issued.channel == "email" and issued.sent_to == "a***@example.com"
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.to("ann@example.com")
    code = re.search(r"\b(\d{6})\b", mail.get_content()).group(1)
    async with session_scope(sessionmaker) as s:
        stored = (
            await s.execute(text("SELECT code_hash, expires_at - created_at FROM verification_code"))
        ).one()
        secrets_left = await s.scalar(text("SELECT count(*) FROM notification WHERE secret_enc IS NOT NULL"))
    assert code.encode() not in bytes(stored[0]) and stored[1].total_seconds() == pytest.approx(600, abs=2)
    assert secrets_left == 0  # the code left with the e-mail; only its hash stays
    checked = await _check(sessionmaker, notify_settings, d["id"], code)
    assert checked.channel == "email"
    with pytest.raises(CodeMissing):  # used once
        await _check(sessionmaker, notify_settings, d["id"], code)


async def test_five_wrong_codes_lock_the_purpose_for_an_hour(client, admin_headers, sessionmaker, settings):
    d = await register(client, admin_headers, name="Bo")
    await _issue(sessionmaker, settings, d["id"])
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()
    code = re.search(r"\b(\d{6})\b", inbox["items"][0]["body"]).group(1)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(CodeWrong) as exc:
            await _check(sessionmaker, settings, d["id"], wrong)
        assert exc.value.status == 422 and exc.value.extra["attempts_left"] == left
        assert f"{left} attempt" in exc.value.message
    with pytest.raises(CodeWrong) as exc:
        await _check(sessionmaker, settings, d["id"], wrong)
    assert exc.value.extra["attempts_left"] == 0 and "locked_until" in exc.value.extra
    with pytest.raises(CodeLocked) as locked:  # even the right code, for an hour
        await _check(sessionmaker, settings, d["id"], code)
    assert locked.value.status == 429 and 3500 < int(locked.value.headers["Retry-After"]) <= 3600
    with pytest.raises(CodeLocked):  # and no new code meanwhile
        await _issue(sessionmaker, settings, d["id"])
    # another purpose is not locked
    assert (
        await _issue(
            sessionmaker, settings, d["id"], purpose="contact_email", destination=("email", "bo@example.com")
        )
    ).channel == "email"
    async with session_scope(sessionmaker) as s:  # an hour later
        await s.execute(text("UPDATE verification_code SET locked_until = now() - interval '1 second'"))
    await _issue(sessionmaker, settings, d["id"])


async def test_expired_code_says_so_and_a_new_code_replaces_the_old(
    client, admin_headers, sessionmaker, settings
):
    d = await register(client, admin_headers, name="Cy")
    await _issue(sessionmaker, settings, d["id"])
    async with session_scope(sessionmaker) as s:
        await s.execute(text("UPDATE verification_code SET expires_at = now() - interval '1 second'"))
    with pytest.raises(CodeExpired) as exc:
        await _check(sessionmaker, settings, d["id"], "123456")
    assert (
        exc.value.status == 422 and exc.value.extra["attempts_left"] == 5 and "expired" in exc.value.message
    )
    await _issue(sessionmaker, settings, d["id"])
    await _issue(sessionmaker, settings, d["id"])
    async with session_scope(sessionmaker) as s:
        live = await s.scalar(
            text("SELECT count(*) FROM verification_code WHERE superseded_at IS NULL AND used_at IS NULL")
        )
    assert live == 1
    with pytest.raises(NoVerifiedContact):
        await _issue(sessionmaker, settings, d["id"], purpose="key_recovery", require_contact=True)


async def test_code_sends_and_checks_are_rate_limited_per_person_and_ip(
    client, admin_headers, sessionmaker, settings, redis_url, redis_prefix
):
    d = await register(client, admin_headers, name="Di")
    e = await register(client, admin_headers, name="Ed")
    redis = aioredis.from_url(redis_url)
    limits = {
        "code_send.person": Limit(2, 60),
        "code_send.ip": Limit(4, 60),
        "code_check.person": Limit(1, 60),
    }
    limiter = RateLimiter(redis, prefix=redis_prefix, limits=limits, ip="203.0.113.7")
    try:
        await _issue(sessionmaker, settings, d["id"], limiter=limiter)
        await _issue(sessionmaker, settings, d["id"], limiter=limiter)
        with pytest.raises(RateLimited) as exc:
            await _issue(sessionmaker, settings, d["id"], limiter=limiter)
        assert exc.value.status == 429 and 0 < int(exc.value.headers["Retry-After"]) <= 60
        await _issue(
            sessionmaker, settings, e["id"], limiter=limiter
        )  # another person, same IP: its 4th send
        with pytest.raises(RateLimited):
            await _issue(sessionmaker, settings, e["id"], limiter=limiter)
        other_ip = RateLimiter(redis, prefix=redis_prefix, limits=limits, ip="203.0.113.8")
        with pytest.raises(CodeWrong):
            await _check(sessionmaker, settings, e["id"], "999999x", limiter=other_ip)
        with pytest.raises(RateLimited):
            await _check(sessionmaker, settings, e["id"], "999999x", limiter=other_ip)
    finally:
        await redis.aclose()
