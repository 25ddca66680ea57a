from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from distnet.kit.contract import Money

MoneyText = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]


class PayoutRunCreate(msgspec.Struct, forbid_unknown_fields=True):
    min_amount: MoneyText | None = None
    """Pay only distributors with at least this much available (default: the configured minimum)."""
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] | None = None


SkipReason = Literal[
    "closed",
    "erased",
    "no_payout_account",
    "payout_account_unconfirmed",
    "payout_account_cooling_off",
    "violation_hold",
    "open_risk_case",
    "contact_unverified",
]


class PayoutSkip(msgspec.Struct):
    distributor_id: int
    distributor_code: str
    available: str
    """The available balance when the run was created."""
    reasons: list[SkipReason]


class PayoutSkipPage(msgspec.Struct):
    items: list[PayoutSkip]
    next_cursor: str | None


class PayoutResult(msgspec.Struct, forbid_unknown_fields=True):
    item_id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    status: Literal["paid", "failed", "returned"]
    """``paid`` / ``failed`` for an item still reserved; ``returned`` (退票) for a paid item the bank
    later sent back: the money returns to the distributor's available balance, its tax is given
    back, and the payout account must be confirmed again before the next payout."""
    reference: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    """The bank's reference of the transfer (required for paid), or of the return (required for returned)."""
    reason: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    """Why the bank refused it (required for failed) or sent it back (required for returned)."""
    amount: MoneyText | None = None
    """When given, must equal the item's amount: a check against a mismatched bank file."""


class PayoutResults(msgspec.Struct, forbid_unknown_fields=True):
    results: Annotated[list[PayoutResult], msgspec.Meta(min_length=1, max_length=200_000)]


class RepaymentCreate(msgspec.Struct, forbid_unknown_fields=True):
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    amount: MoneyText


class PayoutRunView(msgspec.Struct):
    id: int
    status: str
    """draft | approved | exported | completed | cancelled"""
    min_amount: Money
    currency: str
    note: str | None
    cutoff: datetime
    """Commissions available at this time are paid by the run."""
    item_count: int
    total_amount: Money
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    exported_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None


class ItemStatusTotals(msgspec.Struct):
    count: int
    amount: Money
    """Gross."""
    tax: Money
    net: Money


class SkippedTotal(msgspec.Struct):
    reason: SkipReason
    distributors: int
    amount: Money


class PayoutRunDetail(PayoutRunView):
    items_by_status: dict[str, ItemStatusTotals]
    skipped: list[SkippedTotal]
    """Distributors at or above the minimum who got no item, by reason (one may count under several)."""


class PayoutItemView(msgspec.Struct):
    id: int
    run_id: int
    distributor_id: int
    distributor_code: str
    distributor_name: str
    amount: Money
    """Gross, as ``gross``."""
    gross: Money
    tax: Money
    net: Money
    """What the bank pays."""
    tax_month: date | None
    final_payout: bool
    """The final payout of a closing account."""
    currency: str
    status: str
    """reserved | paid | failed | cancelled | returned"""
    bank_reference: str | None
    failure_reason: str | None
    result_at: datetime | None
    return_reference: str | None
    return_reason: str | None
    returned_at: datetime | None


class AppliedResults(msgspec.Struct):
    paid: int
    failed: int
    commissions_paid: int
    returned: int = 0
    """Paid items the bank returned (退票): money and tax back to available."""
    commissions_restored: int = 0
    """Commissions of returned items made available again."""


class ResultsReport(msgspec.Struct):
    run_id: int
    status: str
    applied: AppliedResults
    unchanged: int
    """Lines already applied with the same result (a file imported twice)."""
    open_items: int
    """Items still waiting for a result."""


class RepaymentView(msgspec.Struct):
    id: int
    distributor_id: int
    external_id: str
    amount: Money
    created_at: datetime
    created_by: str | None
    owed_after: Money | msgspec.UnsetType = msgspec.UNSET
    """What is still owed (absent on a replay)."""
