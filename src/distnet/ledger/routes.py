from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Response, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Principal, Role, ensure_self_or_staff
from distnet.kit.contract import CSV, XLSX, json_or_files
from distnet.kit.http import roles
from distnet.kit.money import check_currency
from distnet.ledger import statement as statements
from distnet.ledger.schemas import DistributorBalances, LedgerVerification, Statement
from distnet.ledger.verify import verify
from distnet.network.errors import DistributorNotFound
from distnet.network.service import get_distributor
from distnet.settings import Settings

DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]
SELF_OR_FINANCE = (Role.distributor, Role.finance, Role.finance_approver, Role.admin)


class LedgerController(Controller):
    path = "/api/v1"
    tags = ["ledger"]

    @get(
        "/distributors/{distributor_id:int}/balances",
        opt=roles(*SELF_OR_FINANCE, raises=[DistributorNotFound]),
    )
    async def balances(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        distributor_id: DistributorId,
        currency: Annotated[str | None, Parameter(max_length=3)] = None,
    ) -> DistributorBalances:
        ensure_self_or_staff(principal, distributor_id, Role.finance, Role.finance_approver)
        await get_distributor(session, distributor_id=distributor_id)
        cur = check_currency(currency, settings.business.default_currency)
        return await statements.balances(session, distributor_id, cur)

    @get(
        "/distributors/{distributor_id:int}/statement",
        opt=roles(*SELF_OR_FINANCE, raises=[DistributorNotFound], files=[CSV, XLSX]),
        responses=json_or_files(Statement),
        summary="Postings with balances after each line (format=json|csv|xlsx)",
    )
    async def statement(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        distributor_id: DistributorId,
        start: Annotated[datetime | None, Parameter(query="from")] = None,
        end: Annotated[datetime | None, Parameter(query="to")] = None,
        format: Literal["json", "csv", "xlsx"] = "json",  # noqa: A002 - the API's parameter name
        currency: Annotated[str | None, Parameter(max_length=3)] = None,
    ) -> Response[Any]:
        ensure_self_or_staff(principal, distributor_id, Role.finance, Role.finance_approver)
        await get_distributor(session, distributor_id=distributor_id)
        cur = check_currency(currency, settings.business.default_currency)
        body = await statements.statement_lines(session, distributor_id, cur, start, end)
        name = f"statement-{distributor_id}"
        if format == "csv":
            return Response(
                statements.to_csv(body),
                media_type=f"{CSV}; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        if format == "xlsx":
            return Response(
                statements.to_xlsx(body),
                media_type=XLSX,
                headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
            )
        return Response(body)

    @get("/ledger/verify", opt=roles(Role.finance, Role.admin))
    async def verify(self, session: AsyncSession) -> LedgerVerification:
        return await verify(session)
