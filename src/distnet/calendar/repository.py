"""All SQL of the business calendar (table ``business_day``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, extract, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.models import BusinessDay


async def overrides(session: AsyncSession, *, first: date, last: date) -> dict[date, bool]:
    rows = await session.execute(
        select(BusinessDay.day, BusinessDay.working).where(BusinessDay.day.between(first, last))
    )
    return {day: working for day, working in rows}


async def year_days(session: AsyncSession, year: int) -> Sequence[Any]:
    return (
        await session.execute(
            select(BusinessDay.day, BusinessDay.working, BusinessDay.name)
            .where(extract("year", BusinessDay.day) == year)
            .order_by(BusinessDay.day)
        )
    ).all()


async def replace_year(
    session: AsyncSession, year: int, days: list[tuple[date, bool, str]], source: str | None
) -> None:
    await session.execute(delete(BusinessDay).where(extract("year", BusinessDay.day) == year))
    if days:
        await session.execute(
            insert(BusinessDay),
            [{"day": day, "working": working, "name": name, "source": source} for day, working, name in days],
        )
