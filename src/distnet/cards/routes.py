from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards import service
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.http import roles

CardNumber = Annotated[str, Parameter(min_length=1, max_length=24)]


class CardController(Controller):
    path = "/api/v1/cards"
    tags = ["cards"]

    @get("/{number:str}", opt=roles(Role.distributor, *STAFF))
    async def get_card(self, session: AsyncSession, principal: Principal, number: CardNumber) -> dict[str, Any]:
        return await service.card_for_view(session, principal, number)

    @post("/{number:str}/loss-report", opt=roles(Role.distributor, Role.admin), status_code=200)
    async def loss_report(self, session: AsyncSession, principal: Principal, number: CardNumber) -> dict[str, Any]:
        return await service.report_loss(session, principal, number)

    @post("/{number:str}/replacement", opt=roles(Role.distributor, Role.admin), status_code=201)
    async def replacement(self, session: AsyncSession, principal: Principal, number: CardNumber) -> dict[str, Any]:
        return await service.replace_card(session, principal, number)
