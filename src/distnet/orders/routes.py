from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.http import roles
from distnet.orders import service
from distnet.orders.schemas import OrderBatch, OrderCreate, RefundCreate
from distnet.settings import Settings

OrderId = Annotated[int, Parameter(ge=1, le=2**62)]


class OrderController(Controller):
    path = "/api/v1/orders"
    tags = ["orders"]

    @post("", opt=roles(Role.distributor, Role.admin), summary="Record a sale on the seller's own card")
    async def create(self, session: AsyncSession, settings: Settings, principal: Principal,
                     data: OrderCreate) -> Response[dict[str, Any]]:
        status, body = await service.create_order(session, settings, principal, data)
        return Response(body, status_code=status)

    @post("/batch", opt=roles(Role.admin), status_code=200, summary="Up to 1,000 orders, one result each")
    async def batch(self, session: AsyncSession, settings: Settings, principal: Principal,
                    data: OrderBatch) -> dict[str, Any]:
        return await service.create_batch(session, settings, principal, data.orders)

    @get("/{order_id:int}", opt=roles(Role.distributor, *STAFF))
    async def get_order(self, session: AsyncSession, settings: Settings, principal: Principal,
                        order_id: OrderId) -> dict[str, Any]:
        return await service.get_order(session, settings, principal, order_id)

    @post("/{order_id:int}/refunds", opt=roles(Role.distributor, Role.admin))
    async def refund(self, session: AsyncSession, settings: Settings, principal: Principal, order_id: OrderId,
                     data: RefundCreate) -> Response[dict[str, Any]]:
        status, body = await service.refund(session, settings, principal, order_id, data)
        return Response(body, status_code=status)
