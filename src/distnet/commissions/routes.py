from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions import service
from distnet.commissions.errors import CommissionNotFound, PlanInvalid
from distnet.commissions.schemas import CommissionExplanation, CommissionView, PlanCreate, PlanList, PlanView
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.contract import Page
from distnet.kit.errors import NotFound
from distnet.kit.http import roles
from distnet.settings import Settings

CommissionId = Annotated[int, Parameter(ge=1, le=2**62)]
NewPlan = Annotated[
    PlanCreate,
    Body(
        examples=[
            Example(
                summary="Two levels, a rate per rank",
                value={
                    "name": "2027 plan",
                    "max_levels": 2,
                    "hold_days": 15,
                    "min_order_amount": "10.00",
                    "excluded_categories": ["gift-card"],
                    "effective_from": "2027-01-01T00:00:00+08:00",
                    "rates": [
                        {"level": level, "rank": rank, "rate_bps": bps}
                        for level, row in ((1, (1000, 1100, 1200, 1300)), (2, (300, 400, 500, 600)))
                        for rank, bps in zip(("member", "silver", "gold", "platinum"), row, strict=True)
                    ],
                },
            )
        ]
    ),
]


class CommissionController(Controller):
    path = "/api/v1"
    tags = ["commissions"]

    @get("/commissions", opt=roles(Role.distributor, *STAFF, raises=[NotFound]))
    async def list_commissions(
        self,
        session: AsyncSession,
        principal: Principal,
        beneficiary_id: Annotated[int | None, Parameter(ge=1, le=2**62)] = None,
        status: Annotated[str | None, Parameter(max_length=16)] = None,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> Page[CommissionView]:
        return await service.list_commissions(
            session,
            principal=principal,
            beneficiary_id=beneficiary_id,
            status=status,
            limit=limit,
            cursor=cursor,
        )

    @get("/commissions/{commission_id:int}", opt=roles(Role.distributor, *STAFF, raises=[CommissionNotFound]))
    async def get_commission(
        self, session: AsyncSession, principal: Principal, commission_id: CommissionId
    ) -> CommissionView:
        return await service.get_commission(session, principal=principal, commission_id=commission_id)

    @get(
        "/commissions/{commission_id:int}/explain",
        opt=roles(Role.distributor, *STAFF, raises=[CommissionNotFound]),
        summary="Why this commission: plan version, rule path, rank and rate, exclusions, availability",
    )
    async def explain(
        self, session: AsyncSession, settings: Settings, principal: Principal, commission_id: CommissionId
    ) -> CommissionExplanation:
        return await service.explain(
            session, settings=settings, principal=principal, commission_id=commission_id
        )

    @post(
        "/commission-plans",
        opt=roles(Role.admin, raises=[PlanInvalid]),
        status_code=201,
        summary="A new plan version, effective from a time (never in the past)",
    )
    async def create_plan(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: NewPlan
    ) -> PlanView:
        return await service.create_plan(session, settings=settings, principal=principal, data=data)

    @get("/commission-plans", opt=roles(*STAFF))
    async def list_plans(self, session: AsyncSession) -> PlanList:
        return await service.list_plans(session)
