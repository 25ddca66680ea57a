from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from distnet.kit.contract import Money


class Balances(msgspec.Struct):
    """A distributor's money by state; ``owed`` is the debt as a positive amount."""

    pending: Money
    available: Money
    withheld: Money
    reserved: Money
    paid: Money
    owed: Money


class DistributorBalances(msgspec.Struct):
    distributor_id: int
    currency: str
    pending: Money
    available: Money
    withheld: Money
    reserved: Money
    paid: Money
    owed: Money


class StatementLine(msgspec.Struct):
    at: datetime
    transaction_id: int
    kind: str
    ref_type: str | None
    ref_id: str | None
    account: str
    commission_id: int | None
    amount: Money
    account_balance: Money
    """The account's balance after this line."""
    running_balance: Money
    """The distributor's money not yet paid out (pending + available + withheld + reserved + owed)."""


class Statement(msgspec.Struct):
    distributor_id: int
    currency: str
    from_: datetime | None = msgspec.field(name="from")
    to: datetime | None
    opening_balance: Money
    closing_balance: Money
    items: list[StatementLine]


class CheckResult(msgspec.Struct):
    name: str
    ok: bool
    detail: str
    examples: list[dict[str, Any]]
    """Up to a few offending rows, as the check's query returns them."""


class LedgerVerification(msgspec.Struct):
    ok: bool
    checks: list[CheckResult]
