"""A distributor's API key: rotation (``POST /me/keys/rotate``) and recovery of a lost key through
a one-time code sent to a verified contact (``POST /keys/recovery`` then ``/keys/recovery/confirm``).

A rotated key is a new random key with the same roles; the old one is revoked in the same
transaction and audited (``api_key.rotated``). A recovered key replaces EVERY live key of the
account (whoever holds the lost one loses it), audited ``api_key.recovered``. Requests already authenticated in another API
process may use the old key for up to ``kit.auth.PRINCIPAL_TTL`` seconds (its resolution cache)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.keys import repository as repo
from distnet.keys.errors import KeyNotFound
from distnet.keys.schemas import IssuedKey, RecoveryConfirm, RecoveryStart, RecoveryStarted
from distnet.kit import audit, auth
from distnet.kit.auth import Principal, Role
from distnet.kit.crypto import keyed_hash
from distnet.kit.ratelimit import RateLimiter
from distnet.network.service import get_distributor
from distnet.notifications.service import notify
from distnet.settings import Settings
from distnet.verification import service as verification
from distnet.verification.errors import CodeMissing


def forget_cached(key_ids: set[int]) -> None:
    """Drop revoked keys from this process's principal cache, so they fail here at once."""
    for digest, (_, principal) in list(auth._principal_cache.items()):
        if principal.key_id in key_ids:
            auth._principal_cache.pop(digest, None)


async def rotate(session: AsyncSession, *, principal: Principal) -> IssuedKey:
    """Replace the calling distributor key by a new one (same name and roles)."""
    if principal.distributor_id is None or principal.key_id is None:
        raise KeyNotFound("this key belongs to no distributor")
    revoked = await repo.revoke(session, distributor_id=principal.distributor_id, key_id=principal.key_id)
    if not revoked:  # revoked meanwhile by a concurrent rotation
        raise KeyNotFound("this key was revoked meanwhile")
    return await _issue(
        session,
        actor=principal,
        distributor_id=principal.distributor_id,
        roles=list(principal.roles),
        revoked=revoked,
        action="api_key.rotated",
    )


async def _issue(
    session: AsyncSession,
    *,
    actor: Principal,
    distributor_id: int,
    roles: list[str],
    revoked: list[tuple[int, str]],
    action: str,
) -> IssuedKey:
    d = await get_distributor(session, distributor_id=distributor_id)
    key, raw = await auth.create_key(
        session,
        name=f"distributor {d.code}",
        roles=roles or [Role.distributor],
        distributor_id=distributor_id,
    )
    await session.refresh(key, ["created_at", "roles"])
    await audit.record(
        session,
        actor,
        action,
        "distributor",
        distributor_id,
        before={"keys": [p for _, p in revoked]},
        after={"key": key.prefix},
    )
    forget_cached({key_id for key_id, _ in revoked})
    return IssuedKey(
        api_key=raw,
        prefix=key.prefix,
        roles=list(key.roles),
        created_at=key.created_at,
        revoked_prefixes=[p for _, p in revoked],
    )


# -- recovery of a lost key ----------------------------------------------------------------

RECOVERY_SENT = (
    "If the code and contact match a verified contact of an account, a one-time code was sent "
    "there; confirm it with POST /api/v1/keys/recovery/confirm."
)


async def _recovering(session: AsyncSession, *, settings: Settings, code: str, contact: str) -> int | None:
    """The distributor whose referral code is ``code`` and whose VERIFIED phone or e-mail is
    ``contact`` (compared by keyed hash), or None. A lost key is recovered only through a
    contact the owner proved was theirs."""
    secret = settings.secret_key
    return await repo.distributor_with_verified_contact(
        session,
        code=code.strip().upper(),
        phone_hash=keyed_hash(secret, "phone", contact),
        email_hash=keyed_hash(secret, "email", contact),
    )


async def start_recovery(
    session: AsyncSession, *, settings: Settings, data: RecoveryStart, limiter: RateLimiter | None
) -> RecoveryStarted:
    """Send a ``key_recovery`` code to the verified contact. The answer is the same whether or
    not the details match, so it tells nobody which codes and contacts belong together."""
    if limiter is not None:  # per IP and per account: nobody probes codes and contacts in bulk
        await limiter.hit("key_recovery", person=data.code.strip().upper())
    distributor_id = await _recovering(session, settings=settings, code=data.code, contact=data.contact)
    if distributor_id is not None:
        await verification.issue_code(
            session,
            settings=settings,
            distributor_id=distributor_id,
            purpose="key_recovery",
            require_contact=True,
            limiter=limiter,
        )
    return RecoveryStarted(
        message=RECOVERY_SENT, expires_in_minutes=int(verification.CODE_TTL.total_seconds() // 60)
    )


async def confirm_recovery(
    session: AsyncSession, *, settings: Settings, data: RecoveryConfirm, limiter: RateLimiter | None
) -> IssuedKey:
    """Check the code (422 wrong/expired/missing with the attempts left, 429 when locked); then
    every live key of the distributor is revoked and a new distributor key issued (audited
    ``api_key.recovered``)."""
    if limiter is not None:
        await limiter.hit("key_recovery_check", person=data.code.strip().upper())
    distributor_id = await _recovering(session, settings=settings, code=data.code, contact=data.contact)
    if distributor_id is None:
        raise CodeMissing(
            "no code is waiting for this; ask for a new one",
            extra={"errors": [{"field": "verification_code", "message": "no code was sent"}]},
        )
    checked = await verification.check_code(
        session,
        settings=settings,
        distributor_id=distributor_id,
        purpose="key_recovery",
        code=data.verification_code,
        limiter=limiter,
    )
    revoked = await repo.revoke(session, distributor_id=distributor_id, key_id=None)
    actor = Principal(key_id=None, name=f"key recovery via {checked.channel}", distributor_id=distributor_id)
    issued = await _issue(
        session,
        actor=actor,
        distributor_id=distributor_id,
        roles=[Role.distributor],
        revoked=revoked,
        action="api_key.recovered",
    )
    # a security notice on every channel (it cannot be muted): if this was not the owner, they know
    await notify(
        session,
        distributor_id=distributor_id,
        event_key=f"api_key:{issued.prefix}",
        kind="api_key_replaced",
        params={"at": issued.created_at.isoformat(), "how": f"recovery_{checked.channel}"},
    )
    return issued
