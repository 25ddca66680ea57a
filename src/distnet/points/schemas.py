from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

PointsAmount = Annotated[int, msgspec.Meta(ge=1, le=10**12)]


class RedemptionCreate(msgspec.Struct, forbid_unknown_fields=True):
    points: PointsAmount
    purpose: Literal["gift", "purchase"] = "gift"
    """兑换礼品 (a gift) or 抵扣消费 (against a purchase)."""
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    """The gift or the order it pays for, as the shop names it."""


class AdjustmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    points: Annotated[int, msgspec.Meta(ge=-(10**12), le=10**12)]
    """Positive: a new lot; negative: taken from the oldest lots (refused beyond the balance)."""
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]


class LotUse(msgspec.Struct):
    lot_id: int
    points: int


class Spend(msgspec.Struct):
    id: int
    distributor_id: int
    kind: str
    points: int
    purpose: str
    reference: str | None
    value: str
    """What the points are worth in the default currency (the catalogue's point value)."""
    lots: list[LotUse]
    balance_after: int
    created_at: datetime


class Lot(msgspec.Struct):
    id: int
    source: str
    source_ref: str
    amount: int
    remaining: int
    netted: int
    reversed: int
    expired: int
    earned_at: datetime
    expires_at: datetime


class Adjusted(msgspec.Struct):
    distributor_id: int
    points: int
    reason: str
    lot_id: int | None
    spend_id: int | None
    balance_after: int


class MyPoints(msgspec.Struct):
    distributor_id: int
    balance: int
    debt: int
    value: str
    lots: list[Lot]
    """Lots with points left, the first to expire (and to be spent) first."""
