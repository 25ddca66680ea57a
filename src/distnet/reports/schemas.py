"""The JSON shape of the reports (``format=json``): a title, a summary of labelled totals (the
labels depend on the data, e.g. ``"paid: net"``), the column names and one row per item. Times
in rows and summaries are ISO 8601 strings, as in the CSV and XLSX files."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from distnet.kit.contract import Money

Row = TypeVar("Row")
SummaryValue = str | int | bool | None


class Report(msgspec.Struct, Generic[Row]):
    title: str
    summary: dict[str, SummaryValue]
    columns: list[str]
    items: list[Row]


class CommissionStatementRow(msgspec.Struct):
    commission_id: int
    order_id: int
    order_external_id: str
    level: int
    rate_bps: int
    base: Money
    amount: Money
    reversed: Money
    net: Money
    status: str
    created_at: str
    hold_until: str | None
    available_at: str | None
    paid_at: str | None


class PayoutRunReportRow(msgspec.Struct):
    item_id: int
    distributor_id: int
    distributor_code: str
    name: str
    amount: Money
    currency: str
    status: str
    bank_reference: str | None
    failure_reason: str | None
    result_at: str | None


class TrialBalanceRow(msgspec.Struct):
    account: str
    owner: str
    """``platform`` or ``distributors``."""
    currency: str
    accounts: int
    balance: Money
    postings_total: Money
    consistent: bool
    """The balances equal the sum of the postings."""


class DebtAgeingRow(msgspec.Struct):
    distributor_id: int
    distributor_code: str
    name: str
    owed: Money
    days_0_30: Money
    days_31_60: Money
    days_61_90: Money
    days_over_90: Money
    oldest_debt_at: str | None


class WithheldRow(msgspec.Struct):
    kind: str
    """``withheld`` (still withheld, by the month earned) or ``forfeited`` (by the month forfeited)."""
    reason: str
    """The reason of the hold that withheld the money."""
    month: str
    """YYYY-MM on the business calendar."""
    commissions: int
    amount: Money


class PayoutMonthRow(msgspec.Struct):
    month: str
    """YYYY-MM of the run's cutoff on the business calendar (the tax month)."""
    status: str
    items: int
    gross: Money
    tax: Money
    net: Money


class PointsLiabilityRow(msgspec.Struct):
    source: str
    lots: int
    members: int
    outstanding_points: int
    value: Money


class PointsMonthRow(msgspec.Struct):
    month: str
    earned: int
    reversed: int
    redeemed: int
    adjusted_out: int
    expired: int


class BenefitsByRankRow(msgspec.Struct):
    rank: str
    members: int
    suspended: int
    discount_bps: int
    monthly_points: int
    earn_rate_bps: int
    referral_points: int
    benefits: str
    """The benefit codes of the rank, comma-separated."""
