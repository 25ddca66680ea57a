from __future__ import annotations

from litestar import Controller, post
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.keys import service
from distnet.keys.errors import KeyNotFound
from distnet.keys.schemas import IssuedKey, RecoveryConfirm, RecoveryStart, RecoveryStarted
from distnet.kit.auth import Principal, Role
from distnet.kit.http import public, roles
from distnet.kit.ratelimit import RateLimited, RateLimiter
from distnet.settings import Settings
from distnet.verification.errors import CodeExpired, CodeLocked, CodeMissing, CodeWrong


class KeyController(Controller):
    path = "/api/v1/me/keys"
    tags = ["keys"]

    @post(
        "/rotate",
        opt=roles(Role.distributor, raises=[KeyNotFound]),
        status_code=201,
        summary="Replace my API key (the new one is shown once; the old one stops working)",
    )
    async def rotate(self, session: AsyncSession, principal: Principal) -> IssuedKey:
        return await service.rotate(session, principal=principal)


class KeyRecoveryController(Controller):
    """A lost key: a one-time code to the account's verified phone or e-mail, then a new key."""

    path = "/api/v1/keys/recovery"
    tags = ["keys"]

    @post(
        "",
        opt=public(raises=[RateLimited, CodeLocked]),
        status_code=202,
        summary="Send a recovery code to my verified contact",
    )
    async def start(
        self, session: AsyncSession, settings: Settings, limiter: RateLimiter, data: RecoveryStart
    ) -> RecoveryStarted:
        return await service.start_recovery(session, settings=settings, data=data, limiter=limiter)

    @post(
        "/confirm",
        opt=public(raises=[CodeMissing, CodeWrong, CodeExpired, CodeLocked, RateLimited]),
        status_code=201,
        summary="A new key for the recovery code",
    )
    async def confirm(
        self, session: AsyncSession, settings: Settings, limiter: RateLimiter, data: RecoveryConfirm
    ) -> IssuedKey:
        return await service.confirm_recovery(session, settings=settings, data=data, limiter=limiter)
