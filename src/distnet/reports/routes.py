from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Role
from distnet.kit.contract import CSV, XLSX, json_or_files
from distnet.kit.errors import NotFound, ValidationFailed
from distnet.kit.http import roles
from distnet.kit.money import check_currency
from distnet.kit.replicas import READ_ONLY
from distnet.points import reports as points_reports
from distnet.reports import money, render, service
from distnet.reports.schemas import (
    BenefitsByRankRow,
    CommissionStatementRow,
    DebtAgeingRow,
    PayoutMonthRow,
    PayoutRunReportRow,
    PointsLiabilityRow,
    PointsMonthRow,
    Report,
    TrialBalanceRow,
    WithheldRow,
)
from distnet.settings import Settings

Format = Annotated[Literal["json", "csv", "xlsx"], Parameter(query="format")]
Id = Annotated[int, Parameter(ge=1, le=2**62)]
FILES = [CSV, XLSX]


def _local(value: datetime, settings: Settings) -> datetime:
    """A time without an offset is the platform's local time (DISTNET_TIME_ZONE)."""
    return value if value.tzinfo else value.replace(tzinfo=settings.business.zone)


async def _table(
    file_format: str,
    report: tuple[Sequence[tuple[str, Any]], Sequence[Sequence[Any]]],
    *,
    name: str,
    title: str,
    columns: Sequence[str],
    row: type[Any],
) -> Response[Any] | Stream:
    """A report computed whole (summary, rows), as JSON or a download."""
    summary, rows = report
    return await render.respond(
        file_format,
        name=name,
        title=title,
        summary=summary,
        columns=columns,
        batches=render.once(rows),
        row=row,
    )


class ReportController(Controller):
    path = "/api/v1/reports"
    tags = ["reports"]
    opt = READ_ONLY  # reports only read: a replica within the lag bound may answer (kit/replicas)

    @get(
        "/commission-statement",
        opt=roles(Role.finance, raises=[NotFound], files=FILES),
        responses=json_or_files(Report[CommissionStatementRow]),
        summary="A distributor's commissions created in [from, to): one row each, totals by status",
    )
    async def commission_statement(
        self,
        session: AsyncSession,
        state: State,
        distributor_id: Id,
        start: Annotated[datetime | None, Parameter(query="from")] = None,
        end: Annotated[datetime | None, Parameter(query="to")] = None,
        file_format: Format = "json",
    ) -> Response[Any] | Stream:
        now = datetime.now(UTC)
        zone = state.settings.business.zone
        end = _local(end, state.settings) if end else now
        # default: from local midnight 30 days before ``to``
        start = (
            _local(start, state.settings)
            if start
            else datetime.combine((end.astimezone(zone) - timedelta(days=30)).date(), time(), zone)
        )
        if start >= end:
            raise ValidationFailed("from must be before to", field="from")
        summary = await service.commission_statement_summary(
            session, distributor_id=distributor_id, start=start, end=end
        )
        return await render.respond(
            file_format,
            name=f"commission-statement-{distributor_id}",
            title="Commission statement",
            summary=summary,
            columns=service.STATEMENT_COLUMNS,
            batches=service.statement_rows(state.sessionmaker, distributor_id, start, end),
            row=CommissionStatementRow,
        )

    @get(
        "/payout-runs/{run_id:int}",
        opt=roles(Role.finance, files=FILES),
        responses=json_or_files(Report[PayoutRunReportRow]),
        summary="A payout run: totals by item status and every item",
    )
    async def payout_run(
        self, session: AsyncSession, state: State, run_id: Id, file_format: Format = "json"
    ) -> Response[Any] | Stream:
        summary = await service.payout_run_summary(session, run_id=run_id)
        return await render.respond(
            file_format,
            name=f"payout-run-{run_id}-report",
            title="Payout run",
            summary=summary,
            columns=service.PAYOUT_COLUMNS,
            batches=service.payout_run_rows(state.sessionmaker, run_id),
            row=PayoutRunReportRow,
        )

    @get(
        "/trial-balance",
        opt=roles(Role.finance, files=FILES),
        responses=json_or_files(Report[TrialBalanceRow]),
        summary="Ledger trial balance per account type; totals cancel out",
    )
    async def trial_balance(
        self, session: AsyncSession, file_format: Format = "json"
    ) -> Response[Any] | Stream:
        report = await service.trial_balance(session)
        return await _table(
            file_format,
            report,
            name="trial-balance",
            title="Trial balance",
            columns=service.TRIAL_COLUMNS,
            row=TrialBalanceRow,
        )

    @get(
        "/debt-ageing",
        opt=roles(Role.finance, files=FILES),
        responses=json_or_files(Report[DebtAgeingRow]),
        summary="What distributors owe, by age of the debt (0-30, 31-60, 61-90, over 90 days)",
    )
    async def debt_ageing(
        self,
        session: AsyncSession,
        settings: Settings,
        as_of: datetime | None = None,
        currency: Annotated[str | None, Parameter(max_length=3)] = None,
        file_format: Format = "json",
    ) -> Response[Any] | Stream:
        report = await service.debt_ageing(
            session,
            as_of=_local(as_of, settings) if as_of else datetime.now(UTC),
            currency=check_currency(currency, settings.business.default_currency),
        )
        return await _table(
            file_format,
            report,
            name="debt-ageing",
            title="Debt ageing",
            columns=service.AGEING_COLUMNS,
            row=DebtAgeingRow,
        )

    @get(
        "/withheld",
        opt=roles(Role.finance, files=FILES),
        responses=json_or_files(Report[WithheldRow]),
        summary="Money withheld and forfeited, by hold reason and month",
    )
    async def withheld(
        self,
        session: AsyncSession,
        settings: Settings,
        currency: Annotated[str | None, Parameter(max_length=3)] = None,
        file_format: Format = "json",
    ) -> Response[Any] | Stream:
        report = await money.withheld_and_forfeited(
            session,
            time_zone=settings.business.time_zone,
            currency=check_currency(currency, settings.business.default_currency),
        )
        return await _table(
            file_format,
            report,
            name="withheld-forfeited",
            title="Withheld and forfeited",
            columns=money.WITHHELD_COLUMNS,
            row=WithheldRow,
        )

    @get(
        "/payouts-by-month",
        opt=roles(Role.finance, files=FILES),
        responses=json_or_files(Report[PayoutMonthRow]),
        summary="Payout items by month and status: gross, tax, net",
    )
    async def payouts_by_month(
        self,
        session: AsyncSession,
        settings: Settings,
        currency: Annotated[str | None, Parameter(max_length=3)] = None,
        file_format: Format = "json",
    ) -> Response[Any] | Stream:
        report = await money.payouts_by_month(
            session,
            time_zone=settings.business.time_zone,
            currency=check_currency(currency, settings.business.default_currency),
        )
        return await _table(
            file_format,
            report,
            name="payouts-by-month",
            title="Payouts by month",
            columns=money.PAYOUT_MONTH_COLUMNS,
            row=PayoutMonthRow,
        )

    @get(
        "/points-liability",
        opt=roles(Role.finance, Role.admin, files=FILES),
        responses=json_or_files(Report[PointsLiabilityRow]),
        summary="Outstanding points by source and their value; points debt",
    )
    async def points_liability(
        self, session: AsyncSession, file_format: Format = "json"
    ) -> Response[Any] | Stream:
        return await _table(
            file_format,
            await points_reports.liability(session),
            name="points-liability",
            title="Points liability",
            columns=points_reports.LIABILITY_COLUMNS,
            row=PointsLiabilityRow,
        )

    @get(
        "/points-by-month",
        opt=roles(Role.finance, Role.admin, files=FILES),
        responses=json_or_files(Report[PointsMonthRow]),
        summary="Points earned, reversed, redeemed, adjusted and expired per month",
    )
    async def points_by_month(
        self, session: AsyncSession, settings: Settings, file_format: Format = "json"
    ) -> Response[Any] | Stream:
        report = await points_reports.by_month(session, time_zone=settings.business.time_zone)
        return await _table(
            file_format,
            report,
            name="points-by-month",
            title="Points by month",
            columns=points_reports.MONTHLY_COLUMNS,
            row=PointsMonthRow,
        )

    @get(
        "/benefits-by-rank",
        opt=roles(Role.finance, Role.admin, files=FILES),
        responses=json_or_files(Report[BenefitsByRankRow]),
        summary="Members per rank, those suspended, and the benefits in effect for each rank",
    )
    async def benefits_by_rank(
        self, session: AsyncSession, file_format: Format = "json"
    ) -> Response[Any] | Stream:
        return await _table(
            file_format,
            await points_reports.benefits_per_rank(session),
            name="benefits-by-rank",
            title="Benefits by rank",
            columns=points_reports.BENEFITS_COLUMNS,
            row=BenefitsByRankRow,
        )
