"""Console sign-in: the staff member's API key once, then a TOTP code (enrolled on first sign-in),
then a server-side session in PostgreSQL (every process sees it) named by a signed cookie.

The cookie holds a random token and its HMAC; the table holds only the token's SHA-256. The session
ends after ``idle_minutes`` without a request, on sign-out, or when the key is revoked or the person
disabled. Failed steps are counted per client address and refused beyond the limit (429)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import segno
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.console import repository
from distnet.console.errors import SignInRefused, SignInThrottled
from distnet.kit import audit, crypto
from distnet.kit.auth import STAFF, Principal, principal_for, principal_of
from distnet.models import ConsoleSession, Staff
from distnet.settings import Settings

ISSUER = "distnet console"
STEP_SECONDS = 30
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Signed:
    """A session as the request sees it."""

    token_hash: bytes
    stage: str
    csrf_token: str
    principal: Principal
    staff: Staff
    row: ConsoleSession


def now_utc() -> datetime:
    return datetime.now(UTC)


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def sign(settings: Settings, token: str) -> str:
    mac = hmac.new(settings.secret_key, b"console-session:" + token.encode(), hashlib.sha256).digest()
    return f"{token}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def unsign(settings: Settings, value: str | None) -> str | None:
    if not value or "." not in value:
        return None
    token, _, _mac = value.rpartition(".")
    return token if hmac.compare_digest(sign(settings, token), value) else None


async def _check_throttle(session: AsyncSession, settings: Settings, client: str) -> None:
    c = settings.console
    since = now_utc() - timedelta(minutes=c.sign_in_window_minutes)
    if await repository.failures_since(session, client, since) >= c.sign_in_failures:
        raise SignInThrottled(
            f"too many failed attempts from your address; try again in {c.sign_in_window_minutes} minutes",
            headers={"Retry-After": str(c.sign_in_window_minutes * 60)},
        )


async def begin(session: AsyncSession, settings: Settings, *, raw_key: str, client: str) -> str:
    """Check the key; returns the new (second-factor stage) session's token."""
    await _check_throttle(session, settings, client)
    principal = await principal_for(session, raw_key.strip()) if raw_key.strip() else None
    refusal = None
    if principal is None:
        refusal = "unknown or revoked key"
    elif principal.staff_id is None:
        refusal = (
            "this key belongs to no staff member: ask an admin for a key made with 'distnet staff create'"
        )
    elif not principal.roles & STAFF:
        refusal = "this key has no staff role"
    if refusal is not None:
        await repository.record_failure(session, client, "key")
        raise SignInRefused(refusal)
    assert principal is not None and principal.staff_id is not None
    staff = await session.get(Staff, principal.staff_id)
    assert staff is not None
    token = secrets.token_urlsafe(32)
    enrol = (
        None if staff.totp_secret is not None else crypto.encrypt(settings.secret_key, pyotp.random_base32())
    )
    session.add(
        ConsoleSession(
            token_hash=_token_hash(token),
            key_id=principal.key_id,
            staff_id=staff.id,
            stage="second_factor",
            csrf_token=secrets.token_urlsafe(24),
            enrol_secret=enrol,
        )
    )
    await session.flush()
    return token


async def load(session: AsyncSession, settings: Settings, cookie: str | None) -> Signed | None:
    """The session behind a cookie, or None (no cookie, bad signature, idle too long, key revoked,
    person disabled). Touches ``last_seen_at`` at most once a minute."""
    token = unsign(settings, cookie)
    if token is None:
        return None
    token_hash = _token_hash(token)
    found = await repository.session_with_key(session, token_hash)
    if found is None:
        return None
    row, key, staff = found
    at = now_utc()
    principal = principal_of(key, staff.name, staff.disabled_at) if key.revoked_at is None else None
    if principal is None or row.last_seen_at < at - timedelta(minutes=settings.console.idle_minutes):
        await repository.delete_session(session, token_hash)
        return None
    if row.last_seen_at < at - TOUCH_EVERY:
        await repository.touch_session(session, token_hash, at)
    return Signed(token_hash, row.stage, row.csrf_token, principal, staff, row)


def enrolment(settings: Settings, signed: Signed) -> tuple[str, str] | None:
    """(secret for typing in, QR code as inline SVG) while the person has no second factor yet."""
    if signed.row.enrol_secret is None:
        return None
    secret = crypto.decrypt(settings.secret_key, signed.row.enrol_secret)
    assert secret is not None
    uri = pyotp.TOTP(secret).provisioning_uri(name=signed.staff.name, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)), svg


def _matching_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step (current, or one either side for clock drift) whose code this is, if it is
    later than the last accepted one: a code works once."""
    now_step = int(time.time()) // STEP_SECONDS
    for step in (now_step, now_step - 1, now_step + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(
            pyotp.TOTP(secret).at(step * STEP_SECONDS), code
        ):
            return step
    return None


MAX_CODE_FAILURES = 5


async def verify_code(
    session: AsyncSession, settings: Settings, signed: Signed, *, code: str, client: str
) -> str:
    """Second factor: returns the active session's new token (a new token after sign-in, so a
    token seen before it is worth nothing)."""
    await _check_throttle(session, settings, client)
    staff, row = signed.staff, signed.row
    sealed = row.enrol_secret if row.enrol_secret is not None else staff.totp_secret
    secret = crypto.decrypt(settings.secret_key, sealed)
    code = "".join(ch for ch in code if ch.isdigit())
    step = _matching_step(secret, code, staff.totp_last_step) if secret and len(code) == 6 else None
    if step is None:
        await repository.record_failure(session, client, "code")
        row.failed_codes += 1
        if row.failed_codes >= MAX_CODE_FAILURES:
            await repository.delete_session(session, signed.token_hash)
            raise SignInRefused("too many wrong codes: sign in again with your key")
        await session.flush()
        raise SignInRefused("that code is not right (or was used already); type the current one")
    staff.totp_last_step = step
    enrolled_now = row.enrol_secret is not None
    if enrolled_now:
        staff.totp_secret = row.enrol_secret
    token = secrets.token_urlsafe(32)
    await repository.delete_session(session, signed.token_hash)
    session.add(
        ConsoleSession(
            token_hash=_token_hash(token),
            key_id=row.key_id,
            staff_id=staff.id,
            stage="active",
            csrf_token=secrets.token_urlsafe(24),
        )
    )
    await session.flush()
    await audit.record(
        session,
        signed.principal,
        "staff.signed_in",
        "staff",
        staff.id,
        after={"second_factor_enrolled": enrolled_now},
    )
    return token


async def sign_out(session: AsyncSession, signed: Signed) -> None:
    await repository.delete_session(session, signed.token_hash)
    await audit.record(session, signed.principal, "staff.signed_out", "staff", signed.staff.id)


async def expire_idle(session: AsyncSession, settings: Settings) -> int:
    """Periodic housekeeping: idle sessions and old failure rows go."""
    at = now_utc()
    await repository.forget_failures_before(session, at - timedelta(days=1))
    return await repository.delete_idle_sessions(
        session, timedelta(minutes=settings.console.idle_minutes), at
    )
