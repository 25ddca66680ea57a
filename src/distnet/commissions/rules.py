"""Commission money rules (DESIGN invariant 3, ARCHITECTURE ledger table). Pure: no I/O.

All amounts are integer minor units. Commission = floor(base * bps / 10000); the reversal for a
refund is floor(amount * refunded_total / order_amount) - already_reversed, so after refunds that
total the order amount every commission nets to exactly 0, whatever the sequence of partial refunds.
"""

from __future__ import annotations

from dataclasses import dataclass

BPS = 10_000

DEFAULT_RATES: dict[int, dict[str, int]] = {  # level -> beneficiary rank -> basis points
    1: {"member": 1000, "silver": 1200, "gold": 1500, "platinum": 2000},
    2: {"member": 300, "silver": 400, "gold": 500, "platinum": 600},
    3: {"member": 100, "silver": 150, "gold": 200, "platinum": 250},
}
DEFAULT_HOLD_DAYS = 15


def commission_amount(base: int, rate_bps: int) -> int:
    """floor(base * rate_bps / 10000) for non-negative integers."""
    if base < 0 or not (0 <= rate_bps <= BPS):
        raise ValueError("base must be >= 0 and rate_bps within 0..10000")
    return base * rate_bps // BPS


def reversal_due(amount: int, refunded_total: int, order_amount: int, already_reversed: int) -> int:
    """What a commission of ``amount`` must have reversed in addition, once ``refunded_total`` of
    the order is refunded. Never negative, and reversed + due never exceeds amount."""
    if order_amount <= 0 or not (0 <= refunded_total <= order_amount):
        raise ValueError("refunded_total must be within 0..order_amount")
    target = amount * refunded_total // order_amount
    return max(0, target - already_reversed)


@dataclass(frozen=True, slots=True)
class ReversalSplit:
    """How a reversal r of an available commission is taken: ``from_available`` out of the
    available balance, the rest (``debt``) becomes money owed (the owed account goes negative)."""

    from_available: int
    debt: int


def split_available_reversal(r: int, available_balance: int) -> ReversalSplit:
    x = min(r, max(0, available_balance))
    return ReversalSplit(from_available=x, debt=r - x)


# Ledger lines of a reversal r by the commission's status (ARCHITECTURE.md ledger postings table).
# Each entry: (account kind, sign); 'available' is special-cased (see split_available_reversal).
REVERSAL_SOURCE = {
    "pending": "pending",
    "withheld": "withheld",
    "paid": "owed",
    # forfeited money went to the platform: a later refund takes it back from forfeited income
    "forfeited": "forfeited_income",
    # settlement marks a fully reversed commission 'reversed'; nothing is left to take back
    "reversed": "pending",
}


def reversal_lines(status: str, r: int, available_balance: int = 0) -> list[tuple[str, int, bool]]:
    """Postings (kind, amount, platform?) of a reversal ``r`` on a commission in ``status``; the
    commission_expense line +r balances them."""
    if r == 0:
        return []
    if status in ("available", "reserved"):
        # a reserved commission's money is in a payout item that may already be at the bank: the
        # reversal is taken like an available one's, from what is still available, the rest owed
        split = split_available_reversal(r, available_balance)
        lines = [("available", -split.from_available, False), ("owed", -split.debt, False)]
    elif status in REVERSAL_SOURCE:
        kind = REVERSAL_SOURCE[status]
        lines = [(kind, -r, kind == "forfeited_income")]
    else:
        raise ValueError(f"unknown commission status {status!r}")
    lines.append(("commission_expense", r, True))
    return [line for line in lines if line[1] != 0]
