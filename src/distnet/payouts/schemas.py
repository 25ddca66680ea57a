from __future__ import annotations

from typing import Annotated, Literal

import msgspec

MoneyText = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]


class PayoutRunCreate(msgspec.Struct, forbid_unknown_fields=True):
    min_amount: MoneyText | None = None
    """Pay only distributors with at least this much available (default: the configured minimum)."""
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] | None = None


SkipReason = Literal["closed", "erased", "no_payout_account", "payout_account_unconfirmed",
                     "payout_account_cooling_off", "violation_hold", "open_risk_case", "contact_unverified"]


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
