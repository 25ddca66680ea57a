from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class RateIn(msgspec.Struct, forbid_unknown_fields=True):
    level: Annotated[int, msgspec.Meta(ge=1, le=10)]
    rank: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    rate_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class QualificationIn(msgspec.Struct, forbid_unknown_fields=True):
    """What a level's beneficiary must meet to earn on it (judged at the order's placed_at)."""

    level: Annotated[int, msgspec.Meta(ge=1, le=10)]
    min_own_sales: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] = "0.00"
    period_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] = 30
    min_rank: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None


class PlanCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    max_levels: Annotated[int, msgspec.Meta(ge=1, le=10)]
    rates: Annotated[list[RateIn], msgspec.Meta(min_length=1, max_length=40)]
    hold_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 15
    min_order_amount: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] = "0.00"
    excluded_categories: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]], msgspec.Meta(max_length=100)
    ] = msgspec.field(default_factory=list)
    effective_from: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    qualifications: Annotated[list[QualificationIn], msgspec.Meta(max_length=10)] = msgspec.field(
        default_factory=list)
