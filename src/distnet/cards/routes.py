from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards import service
from distnet.cards.errors import CardCancelled, CardNotFound
from distnet.cards.schemas import CardView, ReplacementCard
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.http import roles
from distnet.kit.unit_of_work import AUTOCOMMIT

CardNumber = Annotated[str, Parameter(min_length=1, max_length=24)]


class CardController(Controller):
    path = "/api/v1/cards"
    tags = ["cards"]

    @get("/{number:str}", opt={**roles(Role.distributor, *STAFF, raises=[CardNotFound]), **AUTOCOMMIT})
    async def get_card(self, session: AsyncSession, principal: Principal, number: CardNumber) -> CardView:
        return await service.card_for_view(session, principal=principal, number=number)

    @post(
        "/{number:str}/loss-report",
        opt=roles(Role.distributor, Role.admin, raises=[CardNotFound, CardCancelled]),
        status_code=200,
        summary="Report the card lost (挂失): frozen at once",
    )
    async def loss_report(self, session: AsyncSession, principal: Principal, number: CardNumber) -> CardView:
        return await service.report_loss(session, principal=principal, number=number)

    @post(
        "/{number:str}/replacement",
        opt=roles(Role.distributor, Role.admin, raises=[CardNotFound, CardCancelled]),
        status_code=201,
        summary="Replace the card (补办): holds, balances and history follow",
    )
    async def replacement(
        self, session: AsyncSession, principal: Principal, number: CardNumber
    ) -> ReplacementCard:
        return await service.replace_card(session, principal=principal, number=number)
