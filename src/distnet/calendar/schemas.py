"""The business calendar's API: a year's table of holidays and make-up working days (调休)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec


class CalendarDayIn(msgspec.Struct, forbid_unknown_fields=True):
    day: date
    working: bool
    """false: a public holiday; true: a make-up working day on a weekend (调休)."""
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class CalendarYearPut(msgspec.Struct, forbid_unknown_fields=True):
    days: Annotated[list[CalendarDayIn], msgspec.Meta(max_length=366)]
    """The year's days that differ from the Monday-Friday week; the whole table is replaced."""
    source: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """Where the table comes from (e.g. the State Council's notice)."""


class CalendarDayView(msgspec.Struct):
    day: date
    working: bool
    name: str


class CalendarYearView(msgspec.Struct):
    year: int
    days: list[CalendarDayView]
    """Empty: no table loaded, Monday to Friday are the working days."""
