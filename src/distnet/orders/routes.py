from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards.errors import CardCancelled, CardNotFound
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.errors import IdempotencyConflict
from distnet.kit.http import roles
from distnet.kit.unit_of_work import ONE_STATEMENT
from distnet.network.errors import DistributorNotFound
from distnet.orders import service
from distnet.orders.errors import (
    CardFrozen,
    CardSuspended,
    MaintenanceInProgress,
    OrderFullyRefunded,
    OrderNotFound,
    RefundExceedsRemaining,
    SellerClosed,
)
from distnet.orders.schemas import (
    BatchAnswer,
    OrderBatch,
    OrderCreate,
    OrderDetail,
    OrderView,
    RefundCreate,
    RefundView,
    SellerOrderPage,
)
from distnet.settings import Settings

OrderId = Annotated[int, Parameter(ge=1, le=2**62)]
SELL_REFUSALS = [CardNotFound, CardCancelled, CardFrozen, SellerClosed, CardSuspended, MaintenanceInProgress]
NewOrder = Annotated[
    OrderCreate,
    Body(
        examples=[
            Example(
                summary="A sale on the seller's card",
                value={
                    "external_id": "shop-20261202-000417",
                    "source": "shop",
                    "card_number": "6200123456789012",
                    "amount": "128.00",
                    "currency": "CNY",
                    "category": "skincare",
                    "channel": "wechat",
                    "placed_at": "2026-12-02T10:15:00+08:00",
                    "buyer": {"ref": "buyer-8812", "device_id": "dev-a91c", "ip": "198.51.100.23"},
                },
            )
        ]
    ),
]
NewRefund = Annotated[
    RefundCreate,
    Body(
        examples=[
            Example(
                summary="Part of the order returned",
                value={"external_id": "shop-refund-000093", "amount": "28.00"},
            )
        ]
    ),
]


class OrderController(Controller):
    path = "/api/v1/orders"
    tags = ["orders"]

    @post(
        "",
        opt={
            **roles(Role.distributor, Role.admin, raises=[*SELL_REFUSALS, IdempotencyConflict]),
            **ONE_STATEMENT,
        },
        responses={
            200: ResponseSpec(
                OrderView,
                generate_examples=False,
                description="A replay (same source, external_id and body): the order stored",
            )
        },
        summary="Record a sale on the seller's own card",
    )
    async def create(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: NewOrder
    ) -> Response[OrderView]:
        status, body = await service.create_order(session, settings, principal, data)
        return Response(body, status_code=status)

    @post(
        "/batch",
        opt=roles(Role.admin),
        status_code=200,
        summary="Up to 1,000 orders, one result each (a refused order's problem is in its result)",
    )
    async def batch(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: OrderBatch
    ) -> BatchAnswer:
        return await service.create_batch(session, settings, principal, data.orders)

    @get(
        "/{order_id:int}",
        opt=roles(Role.distributor, *STAFF, raises=[OrderNotFound]),
        summary="An order with its refunds, commissions and why each level has (or has no) commission",
    )
    async def get_order(
        self, session: AsyncSession, settings: Settings, principal: Principal, order_id: OrderId
    ) -> OrderDetail:
        return await service.get_order(session, settings, principal, order_id)

    @post(
        "/{order_id:int}/refunds",
        opt=roles(
            Role.distributor,
            Role.admin,
            raises=[OrderNotFound, IdempotencyConflict, OrderFullyRefunded, RefundExceedsRemaining],
        ),
        responses={
            200: ResponseSpec(
                RefundView,
                generate_examples=False,
                description="A replay (same external_id and amount): the refund stored",
            )
        },
        summary="Refund part or all of an order; its commissions are reversed",
    )
    async def refund(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        order_id: OrderId,
        data: NewRefund,
    ) -> Response[RefundView]:
        status, body = await service.refund(session, settings, principal, order_id, data)
        return Response(body, status_code=status)


DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]
OrderStatus = Literal["completed", "partially_refunded", "refunded"]
PlacedFrom = Annotated[datetime | None, Parameter(query="from", description="placed at or after (RFC 3339)")]
PlacedTo = Annotated[datetime | None, Parameter(query="to", description="placed before (RFC 3339)")]
Limit = Annotated[int | None, Parameter(ge=1, le=500)]
Cursor = Annotated[str | None, Parameter(max_length=200)]


class SellerOrderController(Controller):
    """A distributor's own sales (GET /orders/{id} reads one; these list them)."""

    path = "/api/v1"
    tags = ["orders"]

    @get(
        "/me/orders",
        opt=roles(Role.distributor, raises=[DistributorNotFound]),
        summary="My orders, newest first",
    )
    async def my_orders(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        placed_from: PlacedFrom = None,
        placed_to: PlacedTo = None,
        status: OrderStatus | None = None,
        cursor: Cursor = None,
        limit: Limit = None,
    ) -> SellerOrderPage:
        return await service.seller_orders(
            session,
            settings,
            principal,
            principal.distributor_id or 0,
            placed_from=placed_from,
            placed_to=placed_to,
            status=status,
            cursor=cursor,
            limit=limit,
        )

    @get(
        "/distributors/{distributor_id:int}/orders",
        opt=roles(Role.distributor, *STAFF, raises=[DistributorNotFound]),
        summary="A distributor's orders (owner or staff)",
    )
    async def distributor_orders(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        distributor_id: DistributorId,
        placed_from: PlacedFrom = None,
        placed_to: PlacedTo = None,
        status: OrderStatus | None = None,
        cursor: Cursor = None,
        limit: Limit = None,
    ) -> SellerOrderPage:
        return await service.seller_orders(
            session,
            settings,
            principal,
            distributor_id,
            placed_from=placed_from,
            placed_to=placed_to,
            status=status,
            cursor=cursor,
            limit=limit,
        )
