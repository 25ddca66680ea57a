from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec


class TaxTableCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    effective_from: date
    """Must be the first day of a month: a month's payments are taxed by one table."""
    rules: dict[str, Any]
    """``{"kind": "progressive_after_deduction", "deduction": {threshold, fixed, rate_bps},
    "brackets": [{up_to, rate_bps, quick_deduction}, ...]}``, amounts in minor units."""


class TaxTable(msgspec.Struct):
    id: int
    version: int
    name: str
    effective_from: date
    rules: dict[str, Any]
    created_at: datetime
    created_by: str | None
    in_force: bool


class TaxTableList(msgspec.Struct):
    items: list[TaxTable]


class StatementMonth(msgspec.Struct):
    month: str
    """YYYY-MM, the payment month on the business calendar."""
    payments: int
    gross: str
    tax: str
    net: str


class TaxStatement(msgspec.Struct):
    distributor_id: int
    distributor_code: str
    year: int
    currency: str
    payee_name: str | None
    resident_id: str | None
    """Masked: the last four characters."""
    payer: str
    months: list[StatementMonth]
    """Every month of the year, paid items only (a returned payment is not income)."""
    gross: str
    tax: str
    net: str


class TaxReportRow(msgspec.Struct):
    """One person's withholding in the month, for filing (finance only: the resident ID is whole)."""

    distributor_id: int
    distributor_code: str
    name: str
    resident_id: str
    currency: str
    payments: int
    gross: str
    tax: str
    net: str
