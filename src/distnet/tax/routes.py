from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Principal, Role
from distnet.kit.contract import CSV, XLSX, json_or_files
from distnet.kit.errors import ValidationFailed
from distnet.kit.http import roles
from distnet.network.errors import DistributorNotFound
from distnet.reports import render
from distnet.reports.schemas import Report
from distnet.settings import Settings
from distnet.tax import service, statement
from distnet.tax.errors import InvalidTaxTable
from distnet.tax.schemas import TaxReportRow, TaxStatement, TaxTable, TaxTableCreate, TaxTableList

DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]
PDF = "application/pdf"
Year = Annotated[int, Parameter(ge=2000, le=2100)]
Month = Annotated[str, Parameter(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


class TaxController(Controller):
    path = "/api/v1"
    tags = ["tax"]

    @get("/tax-tables", opt=roles(Role.finance, Role.finance_approver), summary="Tax table versions")
    async def list_tables(self, session: AsyncSession, settings: Settings) -> TaxTableList:
        return await service.list_tables(session, settings=settings)

    @post(
        "/tax-tables",
        opt=roles(Role.admin, raises=[InvalidTaxTable]),
        summary="A new tax table version, effective from a month's first day",
    )
    async def create_table(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: TaxTableCreate
    ) -> TaxTable:
        return await service.create_table(session, settings=settings, principal=principal, data=data)

    @get(
        "/reports/tax",
        opt=roles(Role.finance, files=[CSV, XLSX]),
        responses=json_or_files(Report[TaxReportRow]),
        summary="Monthly withholding for filing: per person name, resident ID, gross, tax (finance only)",
    )
    async def monthly(
        self,
        session: AsyncSession,
        settings: Settings,
        month: Month,
        file_format: Annotated[Literal["json", "csv", "xlsx"], Parameter(query="format")] = "json",
    ) -> Response[Any] | Stream:
        first = date(int(month[:4]), int(month[5:7]), 1)
        summary, rows = await service.monthly_report(session, settings=settings, month=first)
        return await render.respond(
            file_format,
            name=f"tax-{month}",
            title=f"Tax withheld {month}",
            summary=summary,
            columns=service.MONTHLY_COLUMNS,
            batches=render.once(rows),
            row=TaxReportRow,
        )

    @get(
        "/distributors/{distributor_id:int}/tax-statements/{year:int}",
        opt=roles(Role.distributor, Role.finance, raises=[DistributorNotFound], files=[XLSX, PDF]),
        responses=json_or_files(TaxStatement, "As JSON (format=json), XLSX or PDF"),
        summary="Year-end statement: per month gross, tax withheld, net paid (JSON, XLSX or a PDF in Chinese)",
    )
    async def year_statement(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        distributor_id: DistributorId,
        year: Year,
        file_format: Annotated[Literal["json", "xlsx", "pdf"], Parameter(query="format")] = "json",
    ) -> Response[Any]:
        st = await service.statement(
            session, settings=settings, principal=principal, distributor_id=distributor_id, year=year
        )
        if file_format == "json":
            return Response(st)
        if file_format not in ("xlsx", "pdf"):
            raise ValidationFailed("format must be json, xlsx or pdf", field="format")
        content = statement.xlsx_bytes(st) if file_format == "xlsx" else statement.pdf_bytes(st)
        media = render.XLSX_MEDIA if file_format == "xlsx" else "application/pdf"
        return Response(
            content,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="tax-statement-{st.distributor_code}-{year}.{file_format}"'
            },
        )
