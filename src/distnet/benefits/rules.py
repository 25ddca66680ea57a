"""Member benefits (seed 004): the default catalogue and the pure rules of discounts and points.
No I/O: amounts in minor units, points as whole numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BPS = 10_000
EARN_DIVISOR = 100 * BPS
"""Points earned = floor(paid minor units x earn_rate_bps / (100 x 10000)): 10000 bps = 1 point per 1.00."""


@dataclass(frozen=True, slots=True)
class Tier:
    rank: str
    discount_bps: int
    monthly_points: int
    earn_rate_bps: int
    referral_points: int
    flags: tuple[str, ...] = ()
    category_discounts: dict[str, int] = field(default_factory=dict)

    def discount_for(self, category: str | None) -> int:
        if category is not None and category in self.category_discounts:
            return int(self.category_discounts[category])
        return self.discount_bps


_MEMBER_FLAGS = ("member_offers",)
_SILVER_FLAGS = (*_MEMBER_FLAGS, "priority_events")
_GOLD_FLAGS = (*_SILVER_FLAGS, "new_product_trial", "dedicated_service", "priority_service", "free_shipping")
_PLATINUM_FLAGS = (*_GOLD_FLAGS, "vip_events", "personal_service")

# 普通 / 银卡 9折 / 金卡 8.5折 / 白金卡 8折; monthly points rising by tier ("[x]" in the seed: our
# figures), one point per 1.00 spent, more for gold and platinum ("积分兑换比例更优").
DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("member", 0, 0, 10_000, 200, _MEMBER_FLAGS),
    Tier("silver", 1_000, 100, 10_000, 200, _SILVER_FLAGS),
    Tier("gold", 1_500, 300, 12_000, 300, _GOLD_FLAGS),
    Tier("platinum", 2_000, 800, 15_000, 500, _PLATINUM_FLAGS),
)
DEFAULT_CATALOGUE_NAME = "会员权益 (seed 004): 普通 / 银卡 9折 / 金卡 8.5折 / 白金卡 8折"
DEFAULT_POINT_VALUE_MINOR = 1
"""100 points = 1.00."""

AMOUNT_BENEFITS = ("discount", "monthly_points", "points_earning", "referral_points")
"""Benefit codes with an amount; every flag is a benefit code of its own."""


def member_price(amount: int, discount_bps: int) -> tuple[int, int]:
    """(discount, price): the discount is floor(amount x bps / 10000), the member pays the rest."""
    discount = amount * discount_bps // BPS
    return discount, amount - discount


def points_earned(paid: int, earn_rate_bps: int) -> int:
    return paid * earn_rate_bps // EARN_DIVISOR


def reversal_due(points: int, refunded_total: int, order_amount: int, already_reversed: int) -> int:
    """Points of a lot to take back once ``refunded_total`` of its order is refunded (the commission
    rule: floor(points x refunded / amount) - already reversed; a full refund takes all)."""
    return max(0, points * refunded_total // order_amount - already_reversed)


def referral_reversal_due(points: int, already_reversed: int, paid_after: int, min_order: int) -> int:
    """Points of a referral lot to take back after a refund of the order that made it: all that is
    not yet reversed once the order's paid amount (amount - refunds) falls below the minimum
    that qualified it (the catalogue's ``referral_min_order``) or to nothing (a full refund, also
    under a minimum of 0.00), else nothing. A referral is paid for a qualifying first sale, not in
    proportion to it."""
    qualifies = paid_after > 0 and paid_after >= min_order
    return 0 if qualifies else max(0, points - already_reversed)


def reversal_split(due: int, remaining: int) -> tuple[int, int]:
    """(from the lot, points debt): what the lot still holds is taken back, the spent rest is owed."""
    taken = min(due, remaining)
    return taken, due - taken


def benefit_codes(tier: Tier) -> list[str]:
    codes = [
        c
        for c, v in (
            ("discount", tier.discount_bps or tier.category_discounts),
            ("monthly_points", tier.monthly_points),
            ("points_earning", tier.earn_rate_bps),
            ("referral_points", tier.referral_points),
        )
        if v
    ]
    return codes + list(tier.flags)


def tier_from_row(row: Any) -> Tier:
    return Tier(
        rank=row.rank,
        discount_bps=row.discount_bps,
        monthly_points=int(row.monthly_points),
        earn_rate_bps=row.earn_rate_bps,
        referral_points=int(row.referral_points),
        flags=tuple(row.flags),
        category_discounts={k: int(v) for k, v in (row.category_discounts or {}).items()},
    )
