from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Response, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.closure import service as closure
from distnet.closure.schemas import ClosureRequest, ClosureView
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.http import PUBLIC, roles
from distnet.kit.ratelimit import RateLimiter
from distnet.kit.replicas import READ_ONLY
from distnet.network import service
from distnet.network.schemas import DistributorCreate, SponsorMove
from distnet.settings import Settings

ANY_KEY = roles(Role.distributor, *STAFF)
ANY_KEY_READ = {**ANY_KEY, **READ_ONLY}  # may be answered by a replica (kit/replicas)
DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]


class DistributorController(Controller):
    path = "/api/v1"
    tags = ["distributors"]

    @post("/distributors", opt=PUBLIC, summary="Register under a sponsor (admin: a root without one)")
    async def register(self, session: AsyncSession, settings: Settings, principal: Principal,
                       limiter: RateLimiter, data: DistributorCreate) -> dict[str, Any]:
        await limiter.hit("register")
        return await service.register(session, settings, principal, data, limiter=limiter)

    @get("/me", opt=roles(Role.distributor))
    async def me(self, session: AsyncSession, principal: Principal) -> dict[str, Any]:
        return await service.me(session, principal)

    @get("/distributors/{distributor_id:int}", opt=ANY_KEY_READ)
    async def get_distributor(self, session: AsyncSession, principal: Principal,
                              distributor_id: DistributorId) -> dict[str, Any]:
        d = await service.visible_distributor(session, principal, distributor_id)
        return await service.profile(session, d)

    @get("/distributors/{distributor_id:int}/upline", opt=ANY_KEY_READ)
    async def upline(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> dict[str, Any]:
        return await service.upline(session, principal, distributor_id, limit=limit, cursor=cursor)

    @get("/distributors/{distributor_id:int}/downline", opt=ANY_KEY_READ)
    async def downline(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId,
        max_depth: Annotated[int | None, Parameter(ge=1, le=10_000)] = None,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        placed_from: Annotated[datetime | None, Parameter(query="from", description="sales period start")] = None,
        placed_to: Annotated[datetime | None, Parameter(query="to", description="sales period end")] = None,
    ) -> dict[str, Any]:
        return await service.downline(session, principal, distributor_id, max_depth=max_depth, limit=limit,
                                      cursor=cursor, placed_from=placed_from, placed_to=placed_to)

    @get("/distributors/{distributor_id:int}/downline.svg", opt=ANY_KEY_READ, media_type="image/svg+xml",
         summary="The team as a picture (first 150 members, a count of the rest)")
    async def downline_svg(self, session: AsyncSession, principal: Principal, distributor_id: DistributorId,
                           depth: Annotated[int, Parameter(ge=1, le=3)] = 1) -> Response[str]:
        svg = await service.team_svg(session, principal, distributor_id, depth=depth)
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=60"})

    @get("/distributors/{distributor_id:int}/team-stats", opt=ANY_KEY_READ)
    async def team_stats(self, session: AsyncSession, principal: Principal,
                         distributor_id: DistributorId) -> dict[str, Any]:
        return await service.team_stats(session, principal, distributor_id)

    @put("/distributors/{distributor_id:int}/sponsor", opt=roles(Role.admin))
    async def move(self, session: AsyncSession, principal: Principal, distributor_id: DistributorId,
                   data: SponsorMove) -> dict[str, Any]:
        return await service.move_sponsor(session, principal, distributor_id, data.sponsor_id, data.note)

    @post("/distributors/{distributor_id:int}/closure", opt=ANY_KEY, status_code=200,
          summary="Close an account: the owner with a one-time code and a reason; an admin with a reason")
    async def close(self, session: AsyncSession, settings: Settings, principal: Principal, limiter: RateLimiter,
                    distributor_id: DistributorId, data: ClosureRequest | None = None) -> ClosureView:
        data = data or ClosureRequest()
        return await closure.close(session, settings=settings, principal=principal, distributor_id=distributor_id,
                                   reason=data.reason, reason_text=data.reason_text, code=data.code, note=data.note,
                                   limiter=limiter)
