from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Principal, Role
from distnet.kit.contract import Page
from distnet.kit.errors import ValidationFailed
from distnet.kit.http import roles
from distnet.kit.pagination import check_limit, decode_cursor, encode_cursor
from distnet.settlement import service
from distnet.settlement.errors import AsOfInFuture, SettlementRunNotFound
from distnet.settlement.schemas import SettlementCreate, SettlementRunView

RunId = Annotated[int, Parameter(ge=1, le=2**62)]


class SettlementController(Controller):
    path = "/api/v1/settlements"
    tags = ["settlement"]

    @post(
        "",
        opt=roles(Role.finance, raises=[AsOfInFuture]),
        status_code=201,
        summary="Run settlement now: due pending commissions become available (or withheld)",
    )
    async def run(
        self, state: State, principal: Principal, data: SettlementCreate | None = None
    ) -> SettlementRunView:
        data = data or SettlementCreate()
        if data.as_of is not None and data.as_of.tzinfo is None:
            raise ValidationFailed(
                "as_of needs a time zone (RFC 3339, e.g. 2026-01-01T00:00:00Z)", field="as_of"
            )
        # the job owns its transactions (one per partition), so it gets the sessionmaker
        return await service.settle(
            state.sessionmaker, as_of=data.as_of, partitions=data.partitions, triggered_by=principal.actor
        )

    @get("", opt=roles(Role.finance, Role.finance_approver))
    async def list_runs(
        self,
        session: AsyncSession,
        limit: Annotated[int | None, Parameter(ge=1, le=500)] = None,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> Page[SettlementRunView]:
        limit = check_limit(limit)
        after = decode_cursor(cursor, 1)
        if after is not None and not isinstance(after[0], int):
            raise ValidationFailed("cursor is not valid", field="cursor")
        ids = await service.list_runs(session, limit=limit + 1, before=after[0] if after else None)
        more = len(ids) > limit
        ids = ids[:limit]
        return Page(
            [await service.run_view(session, run_id=i) for i in ids], encode_cursor(ids[-1]) if more else None
        )

    @get("/{run_id:int}", opt=roles(Role.finance, Role.finance_approver, raises=[SettlementRunNotFound]))
    async def get_run(self, session: AsyncSession, run_id: RunId) -> SettlementRunView:
        return await service.run_view(session, run_id=run_id)
