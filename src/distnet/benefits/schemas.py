from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
Points = Annotated[int, msgspec.Meta(ge=0, le=10**12)]


class TierIn(msgspec.Struct, forbid_unknown_fields=True):
    rank: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    discount_bps: Bps = 0
    category_discounts: dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], Bps] = msgspec.field(
        default_factory=dict
    )
    monthly_points: Points = 0
    earn_rate_bps: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    referral_points: Points = 0
    flags: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,47}$")]], msgspec.Meta(max_length=30)
    ] = msgspec.field(default_factory=list)


class CatalogueCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    tiers: Annotated[list[TierIn], msgspec.Meta(min_length=1, max_length=10)]
    point_value_minor: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 1
    referral_min_order: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] = "0.00"
    effective_from: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class Tier(msgspec.Struct):
    rank: str
    discount_bps: int
    category_discounts: dict[str, int]
    monthly_points: int
    earn_rate_bps: int
    referral_points: int
    flags: list[str]
    benefits: list[str]
    """The benefit codes this tier grants."""


class Catalogue(msgspec.Struct):
    version: int
    name: str
    effective_from: datetime
    point_value_minor: int
    referral_min_order: str
    created_by: str | None
    active: bool
    tiers: list[Tier]


class CatalogueList(msgspec.Struct):
    items: list[Catalogue]
    active_version: int


class HoldRef(msgspec.Struct):
    id: int
    reason: str
    since: str
    ends_at: str | None
    suspends_benefits: bool


class Benefit(msgspec.Struct):
    code: str
    kind: str
    """discount | points | flag"""
    value: Any
    in_effect: bool
    since: datetime | None
    suspended_by: HoldRef | None = None


class MyBenefits(msgspec.Struct):
    distributor_id: int
    rank: str
    rank_since: datetime
    catalogue_version: int
    catalogue_effective_from: datetime
    suspended: bool
    holds: list[HoldRef]
    items: list[Benefit]
    points_balance: int
    points_debt: int


class Explanation(msgspec.Struct):
    code: str
    in_effect: bool
    rank: str
    rank_since: datetime
    catalogue_version: int
    granted_from_rank: str | None
    """The lowest rank whose tier grants the benefit (None: no rank does in this catalogue)."""
    missing: dict[str, Any] | None
    """For a rank below it: the thresholds still missing (own and team sales over the period)."""
    suspended_by: list[HoldRef]
    not_suspending: list[HoldRef]
    reasons: list[str]


class Quote(msgspec.Struct):
    category: str | None
    amount: str
    discount_bps: int
    discount: str
    member_price: str
    rank: str
    catalogue_version: int
    in_effect: bool
    note: str
