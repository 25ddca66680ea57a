from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions import service
from distnet.commissions.schemas import PlanCreate
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.http import roles
from distnet.settings import Settings

CommissionId = Annotated[int, Parameter(ge=1, le=2**62)]


class CommissionController(Controller):
    path = "/api/v1"
    tags = ["commissions"]

    @get("/commissions", opt=roles(Role.distributor, *STAFF))
    async def list_commissions(
        self, session: AsyncSession, principal: Principal,
        beneficiary_id: Annotated[int | None, Parameter(ge=1, le=2**62)] = None,
        status: Annotated[str | None, Parameter(max_length=16)] = None,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> dict[str, Any]:
        return await service.list_commissions(session, principal, beneficiary_id=beneficiary_id, status=status,
                                              limit=limit, cursor=cursor)

    @get("/commissions/{commission_id:int}", opt=roles(Role.distributor, *STAFF))
    async def get_commission(self, session: AsyncSession, principal: Principal,
                             commission_id: CommissionId) -> dict[str, Any]:
        return await service.get_commission(session, principal, commission_id)

    @get("/commissions/{commission_id:int}/explain", opt=roles(Role.distributor, *STAFF))
    async def explain(self, session: AsyncSession, settings: Settings, principal: Principal,
                      commission_id: CommissionId) -> dict[str, Any]:
        return await service.explain(session, settings, principal, commission_id)

    @post("/commission-plans", opt=roles(Role.admin), status_code=201)
    async def create_plan(self, session: AsyncSession, settings: Settings, principal: Principal,
                          data: PlanCreate) -> dict[str, Any]:
        return await service.create_plan(session, settings, principal, data)

    @get("/commission-plans", opt=roles(*STAFF))
    async def list_plans(self, session: AsyncSession) -> dict[str, Any]:
        return await service.list_plans(session)
