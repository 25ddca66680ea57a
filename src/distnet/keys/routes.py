from __future__ import annotations

from litestar import Controller, post
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.keys import service
from distnet.keys.errors import KeyNotFound
from distnet.keys.schemas import IssuedKey
from distnet.kit.auth import Principal, Role
from distnet.kit.http import roles


class KeyController(Controller):
    path = "/api/v1/me/keys"
    tags = ["keys"]

    @post("/rotate", opt=roles(Role.distributor, raises=[KeyNotFound]), status_code=201,
          summary="Replace my API key (the new one is shown once; the old one stops working)")
    async def rotate(self, session: AsyncSession, principal: Principal) -> IssuedKey:
        return await service.rotate(session, principal)
