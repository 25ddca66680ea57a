"""``/api/v1/calendar/{year}``: read and (admin) replace a year's working-day table."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.calendar import service
from distnet.calendar.schemas import CalendarDayView, CalendarYearPut, CalendarYearView
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.errors import ValidationFailed
from distnet.kit.http import roles

Year = Annotated[int, Parameter(ge=2000, le=2100)]
NewYear = Annotated[
    CalendarYearPut,
    Body(
        examples=[
            Example(
                summary="Two days of 2026",
                value={
                    "source": "国务院办公厅关于2026年部分节假日安排的通知",
                    "days": [
                        {"day": "2026-10-01", "working": False, "name": "国庆节"},
                        {"day": "2026-10-10", "working": True, "name": "国庆节调休"},
                    ],
                },
            )
        ]
    ),
]


async def _view(session: AsyncSession, year: int) -> CalendarYearView:
    days = await service.year(session, year=year)
    return CalendarYearView(year=year, days=[CalendarDayView(d.day, d.working, d.name) for d in days])


class CalendarController(Controller):
    path = "/api/v1/calendar"
    tags = ["calendar"]

    @get("/{year:int}", opt=roles(*STAFF), summary="A year's holidays and make-up working days (调休)")
    async def show(self, session: AsyncSession, year: Year) -> CalendarYearView:
        return await _view(session, year)

    @put(
        "/{year:int}",
        opt=roles(Role.admin),
        summary="Replace a year's table (audited); the appeal SLA counts working days from it",
    )
    async def replace(
        self, session: AsyncSession, principal: Principal, year: Year, data: NewYear
    ) -> CalendarYearView:
        if any(d.day.year != year for d in data.days):
            raise ValidationFailed(f"every day must be in {year}", field="days")
        table = service.CalendarYear(
            year=year,
            source=data.source,
            days=tuple(service.CalendarDay(d.day, d.working, d.name) for d in data.days),
        )
        await service.load_year(session, principal=principal, table=table)
        return await _view(session, year)
