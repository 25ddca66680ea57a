"""The owner's closure: ask for a code, close with it and a reason, follow the progress."""

from __future__ import annotations

from litestar import Controller, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.closure import service
from distnet.closure.schemas import ClosureCreate, ClosureView, CodeSent
from distnet.kit.auth import Principal, Role
from distnet.kit.http import roles
from distnet.kit.ratelimit import RateLimited, RateLimiter
from distnet.network.errors import ClosureRefused, DistributorClosed, DistributorNotFound
from distnet.notifications.routes import own_id
from distnet.settings import Settings
from distnet.verification.errors import CodeExpired, CodeLocked, CodeMissing, CodeWrong, NoVerifiedContact


class ClosureController(Controller):
    path = "/api/v1/me/closure"
    tags = ["closure"]

    @post(
        "/code",
        opt=roles(
            Role.distributor,
            raises=[DistributorNotFound, DistributorClosed, NoVerifiedContact, CodeLocked, RateLimited],
        ),
        status_code=201,
        summary="Send a one-time code to confirm a closure",
    )
    async def code(
        self, session: AsyncSession, settings: Settings, principal: Principal, limiter: RateLimiter
    ) -> CodeSent:
        issued = await service.request_code(session, settings=settings, principal=principal, limiter=limiter)
        return CodeSent(issued.channel, issued.sent_to, issued.expires_at)

    @post(
        "/",
        opt=roles(
            Role.distributor,
            raises=[
                DistributorNotFound,
                DistributorClosed,
                ClosureRefused,
                CodeWrong,
                CodeExpired,
                CodeMissing,
                CodeLocked,
                RateLimited,
            ],
        ),
        status_code=200,
        summary="Close my account (注销) with the code and a reason",
    )
    async def close(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limiter: RateLimiter,
        data: ClosureCreate,
    ) -> ClosureView:
        return await service.close(
            session,
            settings=settings,
            principal=principal,
            distributor_id=own_id(principal),
            reason=data.reason,
            reason_text=data.reason_text,
            code=data.code,
            limiter=limiter,
        )

    @get(
        "/",
        opt=roles(Role.distributor, raises=[DistributorNotFound]),
        summary="My closure: state, what it waits for, when personal data is erased",
    )
    async def show(self, session: AsyncSession, principal: Principal) -> ClosureView:
        return await service.view(session, distributor_id=own_id(principal))
