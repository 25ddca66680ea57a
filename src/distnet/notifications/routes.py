"""The inbox and notification preferences of the distributor holding the key."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Principal, Role
from distnet.kit.errors import NotFound
from distnet.kit.http import roles
from distnet.notifications import service
from distnet.notifications.errors import NotificationNotFound
from distnet.notifications.schemas import (
    Inbox,
    NotificationView,
    PreferencesUpdate,
    PreferencesView,
    ReadResult,
)
from distnet.settings import Settings

OWNER = roles(Role.distributor)


def own_id(principal: Principal) -> int:
    """The distributor of the key; a staff key without one has no inbox (404)."""
    if principal.distributor_id is None:
        raise NotFound("this key belongs to no distributor")
    return principal.distributor_id


class NotificationController(Controller):
    path = "/api/v1/me"
    tags = ["notifications"]

    @get("/notifications", opt=OWNER, summary="My notices, newest first, with the unread count")
    async def inbox(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        unread: bool = False,
    ) -> Inbox:
        items, unread_count, next_cursor = await service.inbox(
            session,
            settings=settings,
            distributor_id=own_id(principal),
            cursor=cursor,
            limit=limit,
            unread_only=unread,
        )
        return Inbox(
            unread_count,
            [NotificationView(i.id, i.kind, i.subject, i.body, i.created_at, i.read_at) for i in items],
            next_cursor,
        )

    @post(
        "/notifications/{notification_id:int}/read",
        opt=roles(Role.distributor, raises=[NotificationNotFound]),
        status_code=200,
        summary="Mark a notice read; answers the unread count",
    )
    async def read(
        self,
        session: AsyncSession,
        principal: Principal,
        notification_id: Annotated[int, Parameter(ge=1, le=2**62)],
    ) -> ReadResult:
        unread = await service.mark_read(
            session, distributor_id=own_id(principal), notification_id=notification_id
        )
        return ReadResult(notification_id, unread)

    @get("/notification-preferences", opt=OWNER)
    async def get_preferences(self, session: AsyncSession, principal: Principal) -> PreferencesView:
        return await service.preferences_view(session, distributor_id=own_id(principal))

    @put("/notification-preferences", opt=OWNER)
    async def set_preferences(
        self, session: AsyncSession, principal: Principal, data: PreferencesUpdate
    ) -> PreferencesView:
        service.check_mutable(data.muted_kinds or [])
        distributor_id = own_id(principal)
        await service.set_preferences(
            session,
            distributor_id=distributor_id,
            email_enabled=data.email_enabled,
            sms_enabled=data.sms_enabled,
            muted_kinds=data.muted_kinds,
        )
        return await service.preferences_view(session, distributor_id=distributor_id)
