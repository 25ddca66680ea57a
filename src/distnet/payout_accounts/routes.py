from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.closure.schemas import CodeSent
from distnet.kit.auth import Principal, Role
from distnet.kit.errors import NotFound
from distnet.kit.http import roles
from distnet.kit.ratelimit import RateLimited, RateLimiter
from distnet.network.errors import DistributorClosed, DistributorNotFound
from distnet.payout_accounts import service
from distnet.payout_accounts.errors import PayoutAccountNotFound, VerificationCodeRequired
from distnet.payout_accounts.schemas import PayoutAccount, PayoutAccountPut
from distnet.settings import Settings
from distnet.verification.errors import CodeExpired, CodeLocked, CodeMissing, CodeWrong, NoVerifiedContact

DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]


class PayoutAccountController(Controller):
    path = "/api/v1/distributors/{distributor_id:int}/payout-account"
    tags = ["payout accounts"]

    @get(
        "",
        opt=roles(
            Role.distributor,
            Role.finance,
            Role.finance_approver,
            raises=[DistributorNotFound, PayoutAccountNotFound],
        ),
        summary="The payout account, masked (owner, finance)",
    )
    async def get_account(
        self, session: AsyncSession, settings: Settings, principal: Principal, distributor_id: DistributorId
    ) -> PayoutAccount:
        return await service.get_account(
            session, settings=settings, principal=principal, distributor_id=distributor_id
        )

    @put(
        "",
        opt=roles(
            Role.distributor,
            raises=[
                DistributorNotFound,
                DistributorClosed,
                VerificationCodeRequired,
                CodeWrong,
                CodeExpired,
                CodeMissing,
                CodeLocked,
                RateLimited,
            ],
        ),
        responses={
            201: ResponseSpec(PayoutAccount, generate_examples=False, description="The first payout account")
        },
        summary="Set or change the payout account (owner with a one-time code, or admin); starts cooling-off",
    )
    async def put_account(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limiter: RateLimiter,
        distributor_id: DistributorId,
        data: PayoutAccountPut,
    ) -> Response[PayoutAccount]:
        view, first = await service.put_account(
            session,
            settings=settings,
            principal=principal,
            distributor_id=distributor_id,
            data=data,
            limiter=limiter,
        )
        return Response(view, status_code=201 if first else 200)

    @post(
        "/code",
        opt=roles(Role.distributor, raises=[NotFound, CodeLocked, NoVerifiedContact, RateLimited]),
        status_code=201,
        summary="Send the owner a one-time code (to a verified phone or e-mail) to change the payout account",
    )
    async def code(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limiter: RateLimiter,
        distributor_id: DistributorId,
    ) -> CodeSent:
        issued = await service.request_code(
            session, settings=settings, principal=principal, distributor_id=distributor_id, limiter=limiter
        )
        return CodeSent(issued.channel, issued.sent_to, issued.expires_at)
