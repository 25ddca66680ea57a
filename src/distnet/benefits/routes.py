"""Member benefits and points over HTTP (thin: the rules are in benefits.service and
points.service)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.benefits import service
from distnet.benefits.errors import BenefitNotFound, CatalogueInvalid
from distnet.benefits.schemas import Catalogue, CatalogueCreate, CatalogueList, Explanation, MyBenefits, Quote
from distnet.kit.auth import STAFF, Principal, Role, ensure_self_or_staff
from distnet.kit.errors import IdempotencyConflict, NotFound, ValidationFailed
from distnet.kit.http import roles
from distnet.network.errors import DistributorNotFound
from distnet.points import service as points
from distnet.points.errors import IdempotencyKeyRequired, PointsInsufficient
from distnet.points.schemas import Adjusted, AdjustmentCreate, MyPoints, RedemptionCreate, Spend
from distnet.settings import Settings

DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]
IdempotencyKey = Annotated[str | None, Parameter(header="Idempotency-Key", min_length=1, max_length=200)]
BenefitCode = Annotated[str, Parameter(min_length=1, max_length=48)]


def _me(principal: Principal) -> int:
    """The distributor of the key; a staff key (admin passes every guard) has none: 404."""
    if principal.distributor_id is None:
        raise NotFound("this key belongs to no distributor")
    return principal.distributor_id


ME = (NotFound, DistributorNotFound)
SPEND_REPLAY = {
    200: ResponseSpec(
        Spend,
        description="A replay (same Idempotency-Key and body): the first answer",
        generate_examples=False,
    )
}
ADJUSTED_REPLAY = {
    200: ResponseSpec(
        Adjusted,
        description="A replay (same Idempotency-Key and body): the first answer",
        generate_examples=False,
    )
}
MEMBER = (DistributorNotFound,)


class BenefitController(Controller):
    path = "/api/v1"
    tags = ["benefits"]

    @get(
        "/me/benefits",
        opt=roles(Role.distributor, raises=ME),
        summary="The benefits in effect now, and since when",
    )
    async def my_benefits(self, session: AsyncSession, principal: Principal) -> MyBenefits:
        return await service.my_benefits(session, distributor_id=_me(principal))

    @get(
        "/me/benefits/quote",
        opt=roles(Role.distributor, raises=[*ME, ValidationFailed]),
        summary="The member price of an amount in a category",
    )
    async def quote(
        self,
        session: AsyncSession,
        principal: Principal,
        amount: Annotated[str, Parameter(min_length=1, max_length=20)],
        category: Annotated[str | None, Parameter(min_length=1, max_length=64)] = None,
    ) -> Quote:
        return await service.quote(session, distributor_id=_me(principal), category=category, amount=amount)

    @get(
        "/me/benefits/{code:str}/explain",
        opt=roles(Role.distributor, raises=[*ME, BenefitNotFound]),
        summary="Why a benefit is or is not in effect: rank, catalogue version, missing threshold, holds",
    )
    async def explain(self, session: AsyncSession, principal: Principal, code: BenefitCode) -> Explanation:
        return await service.explain(session, distributor_id=_me(principal), code=code)

    @get(
        "/distributors/{distributor_id:int}/benefits",
        opt=roles(Role.distributor, *STAFF, raises=MEMBER),
        summary="A member's benefits (self or staff)",
    )
    async def member_benefits(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId
    ) -> MyBenefits:
        ensure_self_or_staff(principal, distributor_id)
        return await service.my_benefits(session, distributor_id=distributor_id)

    @get(
        "/benefit-catalogues",
        opt=roles(*STAFF),
        summary="Benefit catalogue versions, the one in effect marked",
    )
    async def list_catalogues(self, session: AsyncSession) -> CatalogueList:
        return await service.list_catalogues(session)

    @post(
        "/benefit-catalogues",
        opt=roles(Role.admin, raises=[CatalogueInvalid]),
        status_code=201,
        summary="A new benefit catalogue version: one tier per rank, effective now or later",
    )
    async def create_catalogue(
        self, session: AsyncSession, principal: Principal, data: CatalogueCreate
    ) -> Catalogue:
        return await service.create_catalogue(session, principal=principal, data=data)


class PointsController(Controller):
    path = "/api/v1"
    tags = ["points"]

    @get(
        "/me/points",
        opt=roles(Role.distributor, raises=ME),
        summary="Points balance, debt and the lots with points left",
    )
    async def my_points(self, session: AsyncSession, principal: Principal) -> MyPoints:
        return await points.my_points(session, distributor_id=_me(principal))

    @post(
        "/me/points/redemptions",
        opt=roles(
            Role.distributor,
            raises=[*ME, PointsInsufficient, IdempotencyKeyRequired, IdempotencyConflict, ValidationFailed],
        ),
        status_code=201,
        responses=SPEND_REPLAY,
        summary="Redeem points for a gift or against a purchase (Idempotency-Key required)",
    )
    async def redeem(
        self,
        session: AsyncSession,
        principal: Principal,
        data: RedemptionCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Spend]:
        status, body = await points.redeem(
            session, principal=principal, distributor_id=_me(principal), data=data, key=idempotency_key
        )
        return Response(body, status_code=status)

    @get(
        "/distributors/{distributor_id:int}/points",
        opt=roles(Role.distributor, *STAFF, raises=MEMBER),
        summary="A member's points (self or staff)",
    )
    async def member_points(
        self, session: AsyncSession, principal: Principal, distributor_id: DistributorId
    ) -> MyPoints:
        ensure_self_or_staff(principal, distributor_id)
        return await points.my_points(session, distributor_id=distributor_id)

    @post(
        "/distributors/{distributor_id:int}/points/adjustments",
        opt=roles(Role.admin, raises=[*MEMBER, IdempotencyConflict, ValidationFailed, PointsInsufficient]),
        status_code=201,
        responses=ADJUSTED_REPLAY,
        summary="Add or take points with a reason (audited); Idempotency-Key optional",
    )
    async def adjust(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        distributor_id: DistributorId,
        data: AdjustmentCreate,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[Adjusted]:
        status, body = await points.adjust(
            session,
            principal=principal,
            distributor_id=distributor_id,
            data=data,
            settings=settings,
            key=idempotency_key,
        )
        return Response(body, status_code=status)
