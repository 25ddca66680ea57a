from __future__ import annotations

from litestar import Controller, get
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.http import PUBLIC
from distnet.ranks import service
from distnet.ranks.schemas import RankLadder


class RankController(Controller):
    path = "/api/v1/ranks"
    tags = ["ranks"]

    @get("", opt=PUBLIC, summary="The rank ladder: thresholds and what each rank earns")
    async def ladder(self, session: AsyncSession) -> RankLadder:
        return await service.ladder_view(session)
