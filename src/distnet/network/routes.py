from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Response, get, post, put
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.closure import service as closure
from distnet.closure.schemas import ClosureRequest, ClosureView
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.contract import Page
from distnet.kit.errors import DistnetError, NotFound
from distnet.kit.http import public, roles
from distnet.kit.ratelimit import RateLimited, RateLimiter
from distnet.kit.replicas import READ_ONLY
from distnet.kit.unit_of_work import AUTOCOMMIT
from distnet.network import service
from distnet.network.errors import (
    ClosureRefused,
    CycleRefused,
    DistributorClosed,
    DistributorNotFound,
    UnknownSponsor,
)
from distnet.network.schemas import (
    DistributorCreate,
    DistributorView,
    DownlinePage,
    Me,
    Registration,
    SponsorMove,
    TeamStats,
    UplineMember,
)
from distnet.settings import Settings
from distnet.verification.errors import CodeExpired, CodeLocked, CodeMissing, CodeWrong

ANY_KEY = (Role.distributor, *STAFF)
NewDistributor = Annotated[
    DistributorCreate,
    Body(
        examples=[
            Example(
                summary="A recruit under a sponsor",
                value={
                    "name": "王芳",
                    "sponsor_code": "K7M2QX9P",
                    "phone": "+86 138 0013 8000",
                    "region": "CN-31",
                    "device_id": "dev-4f1c",
                    "ip": "203.0.113.7",
                    "consent": {"terms_version": "2026-12", "privacy_version": "2026-12"},
                },
            )
        ]
    ),
]


def any_key_read(*raises: type[DistnetError]) -> dict[str, Any]:
    """Any key's read: may be answered by a replica (kit/replicas)."""
    return {**roles(*ANY_KEY, raises=raises), **READ_ONLY}


DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]


class DistributorController(Controller):
    path = "/api/v1"
    tags = ["distributors"]

    @post(
        "/distributors",
        opt=public(raises=[UnknownSponsor, RateLimited]),
        summary="Register under a sponsor (admin: a root without one)",
    )
    async def register(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limiter: RateLimiter,
        data: NewDistributor,
    ) -> Registration:
        await limiter.hit("register")
        return await service.register(
            session, settings=settings, principal=principal, data=data, limiter=limiter
        )

    @get("/me", opt={**roles(Role.distributor, raises=[NotFound, DistributorNotFound]), **AUTOCOMMIT})
    async def me(self, session: AsyncSession, principal: Principal) -> Me:
        return await service.me(session, principal=principal)

    @get("/distributors/{distributor_id:int}", opt={**any_key_read(DistributorNotFound), **AUTOCOMMIT})
    async def get_distributor(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId
    ) -> DistributorView:
        return await service.distributor_view(session, principal=principal, distributor_id=distributor_id)

    @get(
        "/distributors/{distributor_id:int}/upline",
        opt=any_key_read(DistributorNotFound),
        summary="Ancestors, nearest first",
    )
    async def upline(
        self,
        session: AsyncSession,
        principal: Principal,
        distributor_id: DistributorId,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> Page[UplineMember]:
        return await service.upline(
            session, principal=principal, distributor_id=distributor_id, limit=limit, cursor=cursor
        )

    @get(
        "/distributors/{distributor_id:int}/downline",
        opt={**any_key_read(DistributorNotFound), **AUTOCOMMIT},
        summary="The whole downline by level, then id",
    )
    async def downline(
        self,
        session: AsyncSession,
        principal: Principal,
        distributor_id: DistributorId,
        max_depth: Annotated[int | None, Parameter(ge=1, le=10_000)] = None,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        placed_from: Annotated[
            datetime | None, Parameter(query="from", description="sales period start")
        ] = None,
        placed_to: Annotated[datetime | None, Parameter(query="to", description="sales period end")] = None,
    ) -> DownlinePage:
        return await service.downline(
            session,
            principal=principal,
            distributor_id=distributor_id,
            max_depth=max_depth,
            limit=limit,
            cursor=cursor,
            placed_from=placed_from,
            placed_to=placed_to,
        )

    @get(
        "/distributors/{distributor_id:int}/downline.svg",
        opt=any_key_read(DistributorNotFound),
        media_type="image/svg+xml",
        summary="The team as a picture (first 150 members, a count of the rest)",
    )
    async def downline_svg(
        self,
        session: AsyncSession,
        principal: Principal,
        distributor_id: DistributorId,
        depth: Annotated[int, Parameter(ge=1, le=3)] = 1,
    ) -> Response[str]:
        svg = await service.team_svg(session, principal=principal, distributor_id=distributor_id, depth=depth)
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})

    @get(
        "/distributors/{distributor_id:int}/team-stats",
        opt=any_key_read(DistributorNotFound),
        summary="Members and net sales per level",
    )
    async def team_stats(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId
    ) -> TeamStats:
        return await service.team_stats(session, principal=principal, distributor_id=distributor_id)

    @put(
        "/distributors/{distributor_id:int}/sponsor",
        opt=roles(Role.admin, raises=[DistributorNotFound, DistributorClosed, CycleRefused]),
        summary="Move a distributor and its whole subtree under another sponsor",
    )
    async def move(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId, data: SponsorMove
    ) -> DistributorView:
        return await service.move_sponsor(
            session,
            principal=principal,
            distributor_id=distributor_id,
            sponsor_id=data.sponsor_id,
            note=data.note,
        )

    @post(
        "/distributors/{distributor_id:int}/closure",
        opt=roles(
            *ANY_KEY,
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
        summary="Close an account: the owner with a one-time code and a reason; an admin with a reason",
    )
    async def close(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limiter: RateLimiter,
        distributor_id: DistributorId,
        data: ClosureRequest | None = None,
    ) -> ClosureView:
        data = data or ClosureRequest()
        return await closure.close(
            session,
            settings=settings,
            principal=principal,
            distributor_id=distributor_id,
            reason=data.reason,
            reason_text=data.reason_text,
            code=data.code,
            note=data.note,
            limiter=limiter,
        )
