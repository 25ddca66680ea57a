from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.events import webhooks
from distnet.events.schemas import NewWebhookEndpoint, WebhookCreate, WebhookEndpointView
from distnet.kit.auth import Principal, Role
from distnet.kit.contract import Items
from distnet.kit.http import roles

NewEndpoint = Annotated[
    WebhookCreate,
    Body(
        examples=[
            Example(
                summary="Holds and payouts to one receiver",
                value={
                    "url": "https://hooks.example.com/distnet",
                    "topics": ["hold.*", "payout.paid", "payout.failed"],
                },
            )
        ]
    ),
]


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]

    @post(
        "", opt=roles(Role.admin), summary="Subscribe an endpoint to event topics (the secret is shown once)"
    )
    async def create(
        self, session: AsyncSession, principal: Principal, data: NewEndpoint
    ) -> NewWebhookEndpoint:
        return await webhooks.create_endpoint(
            session, principal, url=data.url, topics=data.topics, secret=data.secret
        )

    @get("", opt=roles(Role.admin))
    async def list_endpoints(self, session: AsyncSession) -> Items[WebhookEndpointView]:
        return Items(await webhooks.list_endpoints(session))

    @post("/{endpoint_id:int}/deactivation", opt=roles(Role.admin), status_code=200)
    async def deactivate(
        self,
        session: AsyncSession,
        principal: Principal,
        endpoint_id: Annotated[int, Parameter(ge=1, le=2**62)],
    ) -> WebhookEndpointView:
        return await webhooks.deactivate_endpoint(session, principal, endpoint_id)
