"""One-time codes (验证码): 6 digits, valid 10 minutes, 5 attempts, then the purpose is locked for
an hour. Only a salted keyed hash of a code is stored; the code itself travels through the
notification service (encrypted until sent, then erased).

Who uses them:
- closure (this domain): ``POST /api/v1/me/closure/code`` then the code in the closure request;
- contact confirmation: a new phone or e-mail (``purpose="contact_phone"|"contact_email"``,
  ``destination=(channel, address)``) is confirmed by the code sent to it;
- finance, payout-account changes: ``issue_code(session, settings=, distributor_id=, purpose="payout_account")``
  then ``check_code(..., purpose="payout_account", code=)``; emit ``payout_account.changed``
  (payload ``{"distributor_id", "account_masked"?}``) and the owner is notified;
- distributors, key recovery: ``purpose="key_recovery"`` (goes to a verified contact only: pass
  ``require_contact=True`` so the inbox of a lost key is never used).

Both functions take ``settings`` (the secret key hashes codes) and an optional ``limiter``
(``kit.ratelimit.RateLimiter``, the ``limiter`` dependency of every route): code sends and code
checks are then rate-limited per IP and per person (429 + Retry-After).

``check_code`` records the attempt in its OWN short transaction and commits it, so a wrong code
counts even though the request that carried it fails; the code it accepts is consumed at once.
Call it after the checks that could refuse the request for other reasons.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from distnet.kit.crypto import decrypt, encrypt
from distnet.kit.ratelimit import RateLimiter
from distnet.models.notify import CODE_PURPOSES
from distnet.notifications import service as notifications
from distnet.settings import Settings
from distnet.verification import repository as repo
from distnet.verification.errors import CodeExpired, CodeLocked, CodeMissing, CodeWrong, NoVerifiedContact

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
LOCK_FOR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class IssuedCode:
    id: int
    purpose: str
    channel: str
    """Where the code went: ``sms``, ``email`` or ``inbox``."""
    sent_to: str
    """The destination, masked (``138****5678``, ``a***@example.com``, ``inbox``)."""
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class CheckedCode:
    id: int
    purpose: str
    channel: str
    destination: str | None
    """The address the code went to, decrypted (a confirmed phone or e-mail)."""


def mask(channel: str, address: str | None) -> str:
    if channel == "inbox" or not address:
        return "inbox"
    if channel == "email":
        name, _, domain = address.partition("@")
        return f"{name[:1]}***@{domain}"
    digits = address.strip()
    return f"{digits[:3]}****{digits[-4:]}" if len(digits) > 7 else "****" + digits[-2:]


def _hash(settings: Settings, salt: bytes, purpose: str, code: str) -> bytes:
    key = hashlib.sha256(b"distnet-one-time-code:" + settings.secret_key).digest()
    return salt + hmac.new(key, salt + purpose.encode() + b":" + code.encode(), hashlib.sha256).digest()


def _matches(settings: Settings, stored: bytes, purpose: str, code: str) -> bool:
    stored = bytes(stored)
    return hmac.compare_digest(stored, _hash(settings, stored[:16], purpose, code.strip()))


def _now() -> datetime:
    return datetime.now(UTC)


async def _locked_until(
    conn: AsyncSession | AsyncConnection, distributor_id: int, purpose: str
) -> datetime | None:
    return await conn.scalar(repo.LOCKED_UNTIL, {"d": distributor_id, "p": purpose})


def _locked(until: datetime) -> CodeLocked:
    retry = max(int((until - _now()).total_seconds()), 1)
    return CodeLocked(
        f"too many wrong codes; try again after {until.isoformat(timespec='seconds')}",
        extra={"locked_until": until.isoformat(), "retry_after": retry},
        headers={"Retry-After": str(retry)},
    )


async def _contact(
    session: AsyncSession, *, settings: Settings, distributor_id: int
) -> tuple[str, str] | None:
    """The distributor's verified contact: the phone first (SMS), else the e-mail."""
    row = (await session.execute(repo.VERIFIED_CONTACT, {"d": distributor_id})).first()
    if row is None:
        return None
    if row[0] is not None:
        return "sms", decrypt(settings.secret_key, row[0]) or ""
    if row[1] is not None:
        return "email", decrypt(settings.secret_key, row[1]) or ""
    return None


async def issue_code(
    session: AsyncSession,
    *,
    settings: Settings,
    distributor_id: int,
    purpose: str,
    destination: tuple[str, str] | None = None,
    require_contact: bool = False,
    limiter: RateLimiter | None = None,
) -> IssuedCode:
    """Send a new code for ``purpose`` (any earlier live code of that purpose stops working).

    ``destination=("sms"|"email", address)`` sends it there (a new address to confirm); without it
    the code goes to the distributor's verified phone, else verified e-mail, else (unless
    ``require_contact``) the API inbox. Refused (429) while the purpose is locked."""
    if purpose not in CODE_PURPOSES:
        raise ValueError(f"unknown code purpose {purpose!r}")
    # one issuer at a time per person and purpose: two concurrent requests leave one live code
    await session.execute(repo.LOCK_ISSUER, {"k": f"{distributor_id}:{purpose}"})
    until = await _locked_until(session, distributor_id, purpose)
    if until is not None:
        raise _locked(until)
    if limiter is not None:
        await limiter.hit("code_send", person=distributor_id)
    channel, address = (
        destination
        or await _contact(session, settings=settings, distributor_id=distributor_id)
        or ("inbox", None)
    )
    if channel == "inbox" and require_contact:
        raise NoVerifiedContact("add and confirm a phone or e-mail first")
    await session.execute(repo.SUPERSEDE_LIVE_CODES, {"d": distributor_id, "p": purpose})
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    expires_at = _now() + CODE_TTL
    code_id = await session.scalar(
        repo.INSERT_CODE,
        {
            "d": distributor_id,
            "p": purpose,
            "channel": channel,
            "dest": encrypt(settings.secret_key, address),
            "hash": _hash(settings, secrets.token_bytes(16), purpose, code),
            "expires": expires_at,
        },
    )
    await notifications.send_secret(
        session,
        settings=settings,
        distributor_id=distributor_id,
        event_key=f"code:{code_id}",
        kind="verification_code",
        channel=channel,
        secret=code,
        destination=address if destination else None,
        params={"purpose": purpose, "minutes": int(CODE_TTL.total_seconds() // 60)},
    )
    return IssuedCode(int(code_id), purpose, channel, mask(channel, address), expires_at)


def _engine(session: AsyncSession) -> AsyncEngine | AsyncConnection:
    bind = session.bind
    assert bind is not None  # sessions are made bound (db.make_sessionmaker)
    return bind.engine if isinstance(bind, AsyncConnection) else bind


async def check_code(
    session: AsyncSession,
    *,
    settings: Settings,
    distributor_id: int,
    purpose: str,
    code: str,
    limiter: RateLimiter | None = None,
) -> CheckedCode:
    """Accept (and consume) the live code of ``purpose``, or raise: 422 ``code-wrong`` with
    ``attempts_left``, ``code-expired``, ``code-missing``; 429 ``code-locked`` after the fifth
    wrong code, for an hour. The attempt is committed on its own connection (see module doc)."""
    if limiter is not None:
        await limiter.hit("code_check", person=distributor_id)
    engine = _engine(session)
    async with engine.connect() as conn:  # type: ignore[union-attr]
        until = await _locked_until(conn, distributor_id, purpose)
        if until is not None:
            raise _locked(until)
        row = (
            (await conn.execute(repo.LOCK_LIVE_CODE, {"d": distributor_id, "p": purpose})).mappings().first()
        )
        if row is None:
            raise CodeMissing(
                "no code is waiting for this; ask for a new one",
                extra={"errors": [{"field": "code", "message": "no code was sent"}]},
            )
        if row["expires_at"] <= _now():
            await conn.rollback()
            raise CodeExpired(
                f"the code expired at {row['expires_at'].isoformat(timespec='seconds')}; ask for a new one",
                extra={
                    "errors": [{"field": "code", "message": "expired"}],
                    "attempts_left": MAX_ATTEMPTS - row["attempts"],
                },
            )
        if not _matches(settings, row["code_hash"], purpose, code):
            attempts = row["attempts"] + 1
            left = MAX_ATTEMPTS - attempts
            locked_until = _now() + LOCK_FOR if left <= 0 else None
            await conn.execute(
                repo.RECORD_WRONG_ATTEMPT, {"a": attempts, "lock": locked_until, "id": row["id"]}
            )
            await conn.commit()
            message = (
                f"the code is wrong; {left} attempt{'s' if left != 1 else ''} left"
                if left > 0
                else "the code is wrong; no attempts left: locked for an hour"
            )
            extra = {"errors": [{"field": "code", "message": "wrong code"}], "attempts_left": max(left, 0)}
            if locked_until is not None:
                extra["locked_until"] = locked_until.isoformat()
            raise CodeWrong(message, extra=extra)
        await conn.execute(repo.USE_CODE, {"id": row["id"]})
        await conn.commit()
    await notifications.forget_secrets(session, event_key=f"code:{row['id']}")
    return CheckedCode(
        int(row["id"]), purpose, row["channel"], decrypt(settings.secret_key, row["destination_enc"])
    )
