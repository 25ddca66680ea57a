from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.http import PUBLIC, roles
from distnet.network.errors import DistributorNotFound
from distnet.ranks import service
from distnet.ranks.errors import LadderInvalid
from distnet.ranks.schemas import (
    LadderCreate,
    LadderVersion,
    LadderVersions,
    RankCorrected,
    RankCorrection,
    RankLadder,
)

DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]


class RankController(Controller):
    path = "/api/v1"
    tags = ["ranks"]

    @get("/ranks", opt=PUBLIC, summary="The rank ladder: thresholds and what each rank earns")
    async def ladder(self, session: AsyncSession) -> RankLadder:
        return await service.ladder_view(session)

    @get("/rank-ladders", opt=roles(*STAFF), summary="Rank ladder versions, the one in effect marked")
    async def list_ladders(self, session: AsyncSession) -> LadderVersions:
        return await service.ladder_versions(session)

    @post(
        "/rank-ladders",
        opt=roles(Role.admin, raises=[LadderInvalid]),
        status_code=201,
        summary="A new rank ladder version (thresholds, period), effective now or later",
    )
    async def create_ladder(
        self, session: AsyncSession, principal: Principal, data: LadderCreate
    ) -> LadderVersion:
        return await service.create_ladder(session, principal=principal, data=data)

    @post(
        "/distributors/{distributor_id:int}/rank",
        opt=roles(Role.admin, raises=[DistributorNotFound]),
        status_code=200,
        summary="Correct a member's rank, with a reason (audited)",
    )
    async def correct_rank(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId, data: RankCorrection
    ) -> RankCorrected:
        return await service.correct_rank(
            session, principal=principal, distributor_id=distributor_id, data=data
        )
