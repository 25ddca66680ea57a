"""The business calendar: which days are working days in the platform's time zone.

Monday to Friday work, Saturday and Sunday do not, except the days of the ``business_day`` table:
public holidays (not working) and make-up working days on a weekend (调休, working). An admin
loads each year's table (``distnet calendar load``); the shipped tables are in ``data/`` (2026:
the State Council's notice). A year without a table follows the plain week. The appeal SLA
(risk/appeals.py) counts working days with :func:`working_days_after`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.calendar import repository as repo
from distnet.kit import audit
from distnet.kit.errors import ValidationFailed
from distnet.kit.keys import Principal

BUILTIN = Path(__file__).parent / "data"


@dataclass(frozen=True, slots=True)
class CalendarDay:
    day: date
    working: bool
    name: str


@dataclass(frozen=True, slots=True)
class CalendarYear:
    year: int
    source: str | None
    days: tuple[CalendarDay, ...]


def is_working(day: date, overrides: Mapping[date, bool]) -> bool:
    return overrides.get(day, day.weekday() < 5)


def add_working_days(
    start: datetime, days: int, *, zone: ZoneInfo, overrides: Mapping[date, bool]
) -> datetime:
    """``days`` working days after ``start``, at the same local time of day (in ``zone``)."""
    local = start.astimezone(zone)
    day = local.date()
    while days > 0:
        day += timedelta(days=1)
        if is_working(day, overrides):
            days -= 1
    return datetime.combine(day, local.time(), tzinfo=zone).astimezone(UTC)


async def working_days_after(
    session: AsyncSession, *, start: datetime, days: int, zone: ZoneInfo
) -> datetime:
    first = start.astimezone(zone).date()
    # the longest run of days off (Spring Festival: 9) fits many times into this window
    overrides = await repo.overrides(session, first=first, last=first + timedelta(days=3 * days + 30))
    return add_working_days(start, days, zone=zone, overrides=overrides)


def parse_year(document: bytes | str) -> CalendarYear:
    """A year's table as JSON: ``{"year": 2026, "source": "...", "days": [{"day": "2026-01-01",
    "working": false, "name": "元旦"}, ...]}``."""
    try:
        raw = json.loads(document)
        year = int(raw["year"])
        days = tuple(
            CalendarDay(date.fromisoformat(d["day"]), bool(d["working"]), str(d["name"])) for d in raw["days"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(f"not a calendar year document: {exc}", field="days") from None
    return CalendarYear(year=year, source=raw.get("source"), days=days)


def builtin_year(year: int) -> CalendarYear:
    path = BUILTIN / f"cn-{year}.json"
    if not path.exists():
        shipped = sorted(p.stem.removeprefix("cn-") for p in BUILTIN.glob("cn-*.json"))
        raise ValidationFailed(
            f"no shipped table for {year} (shipped: {', '.join(shipped)}); load a file instead", field="year"
        )
    return parse_year(path.read_bytes())


def check_year(table: CalendarYear) -> None:
    problems = [f"{d.day} is not in {table.year}" for d in table.days if d.day.year != table.year]
    seen: set[date] = set()
    for d in table.days:
        if d.day in seen:
            problems.append(f"{d.day} is listed twice")
        seen.add(d.day)
        if d.working and d.day.weekday() < 5:
            problems.append(f"{d.day} is a weekday: only a weekend day can be a make-up working day")
        if not d.name.strip():
            problems.append(f"{d.day} has no name")
    if problems:
        raise ValidationFailed("; ".join(problems), field="days")


async def load_year(session: AsyncSession, *, principal: Principal, table: CalendarYear) -> int:
    """Replace the year's table (audited); returns the number of days stored."""
    check_year(table)
    before = await repo.year_days(session, table.year)
    await repo.replace_year(
        session, table.year, [(d.day, d.working, d.name) for d in table.days], table.source
    )
    await audit.record(
        session,
        principal,
        "calendar.load",
        "calendar_year",
        table.year,
        before={"days": len(before)},
        after={"days": len(table.days), "source": table.source},
    )
    return len(table.days)


async def year(session: AsyncSession, *, year: int) -> Sequence[CalendarDay]:
    return [CalendarDay(r.day, r.working, r.name) for r in await repo.year_days(session, year)]
