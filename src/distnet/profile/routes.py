"""The owner's profile: locale, contact data confirmed by a code, consents."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.closure.schemas import CodeSent
from distnet.kit.auth import Principal, Role
from distnet.kit.http import roles
from distnet.kit.ratelimit import RateLimited, RateLimiter
from distnet.notifications.routes import own_id
from distnet.profile import service
from distnet.profile.errors import ConsentRequired
from distnet.profile.schemas import (
    ConsentGrant,
    ConsentList,
    ContactChange,
    ContactVerify,
    ProfileUpdate,
    ProfileView,
)
from distnet.settings import Settings
from distnet.verification.errors import CodeExpired, CodeLocked, CodeMissing, CodeWrong

OWNER = roles(Role.distributor)


class ProfileController(Controller):
    path = "/api/v1/me"
    tags = ["profile"]

    @get("/profile", opt=OWNER)
    async def show(self, session: AsyncSession, settings: Settings, principal: Principal) -> ProfileView:
        return await service.profile(session, settings=settings, distributor_id=own_id(principal))

    @patch("/profile", opt=OWNER, summary="Change my locale (zh, en): the language of my notices")
    async def update(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: ProfileUpdate
    ) -> ProfileView:
        distributor_id = own_id(principal)
        if data.locale is None:
            return await service.profile(session, settings=settings, distributor_id=distributor_id)
        return await service.set_locale(
            session, settings=settings, principal=principal, distributor_id=distributor_id, locale=data.locale
        )

    @post(
        "/contact",
        opt=roles(Role.distributor, raises=[CodeLocked, RateLimited]),
        status_code=201,
        summary="A new phone or e-mail: a code is sent to it",
    )
    async def change_contact(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limiter: RateLimiter,
        data: ContactChange,
    ) -> CodeSent:
        issued = await service.change_contact(
            session,
            settings=settings,
            distributor_id=own_id(principal),
            channel=data.channel,
            value=data.value,
            limiter=limiter,
        )
        return CodeSent(issued.channel, issued.sent_to, issued.expires_at)

    @post(
        "/contact/verify",
        opt=roles(Role.distributor, raises=[CodeWrong, CodeExpired, CodeMissing, CodeLocked, RateLimited]),
        status_code=200,
        summary="Confirm a phone or e-mail with its code",
    )
    async def verify_contact(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limiter: RateLimiter,
        data: ContactVerify,
    ) -> ProfileView:
        return await service.verify_contact(
            session,
            settings=settings,
            principal=principal,
            distributor_id=own_id(principal),
            channel=data.channel,
            code=data.code,
            limiter=limiter,
        )

    @get("/consents", opt=OWNER)
    async def consents(self, session: AsyncSession, principal: Principal) -> ConsentList:
        return ConsentList(await service.consents(session, distributor_id=own_id(principal)))

    @post("/consents", opt=OWNER, status_code=200, summary="Consent to an optional use (marketing, sms)")
    async def grant(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: ConsentGrant
    ) -> ConsentList:
        return ConsentList(
            await service.grant(
                session,
                settings=settings,
                principal=principal,
                distributor_id=own_id(principal),
                purpose=data.purpose,
                document_version=data.document_version,
            )
        )

    @post(
        "/consents/{purpose:str}/withdraw",
        opt=roles(Role.distributor, raises=[ConsentRequired]),
        status_code=200,
        summary="Withdraw an optional consent (the required ones end with the account)",
    )
    async def withdraw(
        self, session: AsyncSession, principal: Principal, purpose: Annotated[str, Parameter(max_length=32)]
    ) -> ConsentList:
        return ConsentList(
            await service.withdraw(
                session, principal=principal, distributor_id=own_id(principal), purpose=purpose
            )
        )
