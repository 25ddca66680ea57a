from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from distnet.kit.contract import Money


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
        default_factory=list
    )


class PlanRate(msgspec.Struct):
    level: int
    rank: str
    rate_bps: int


class PlanQualification(msgspec.Struct):
    level: int
    min_own_sales: Money
    period_days: int
    min_rank: str | None


class PlanView(msgspec.Struct):
    id: int
    version: int
    name: str
    max_levels: int
    hold_days: int
    min_order_amount: Money
    excluded_categories: list[str]
    effective_from: datetime
    created_by: str | None
    active: bool
    rates: list[PlanRate]
    qualifications: list[PlanQualification] = []
    """Per level: what a beneficiary must have sold (and rank) to earn at that level."""


class PlanList(msgspec.Struct):
    items: list[PlanView]
    """Newest version first."""
    active_version: int | None


class CommissionView(msgspec.Struct):
    id: int
    order_id: int
    level: int
    beneficiary_id: int
    rank_used: str
    rate_bps: int
    base: Money
    amount: Money
    reversed: Money
    net_amount: Money
    status: str
    hold_until: datetime | None
    withheld_hold_id: int | None
    available_at: datetime | None
    paid_at: datetime | None
    created_at: datetime


class PlanRef(msgspec.Struct):
    id: int
    version: int
    name: str
    effective_from: datetime


class ExclusionCheck(msgspec.Struct):
    """One rule checked at attribution; the members besides ``check`` and ``passed`` depend on it."""

    check: str
    passed: bool
    value: str | int | None | msgspec.UnsetType = msgspec.UNSET
    excluded_categories: list[str] | msgspec.UnsetType = msgspec.UNSET
    minimum: Money | msgspec.UnsetType = msgspec.UNSET
    plan_max_levels: int | msgspec.UnsetType = msgspec.UNSET
    platform_cap: int | msgspec.UnsetType = msgspec.UNSET
    detail: str | msgspec.UnsetType = msgspec.UNSET
    min_own_sales: Money | msgspec.UnsetType = msgspec.UNSET
    period_days: int | msgspec.UnsetType = msgspec.UNSET
    own_sales: Money | msgspec.UnsetType = msgspec.UNSET
    min_rank: str | None | msgspec.UnsetType = msgspec.UNSET
    rank_used: str | msgspec.UnsetType = msgspec.UNSET


class RefundRule(msgspec.Struct):
    order_amount: Money
    refunded: Money
    rule: str


class Availability(msgspec.Struct):
    status: str
    hold_until: datetime | None
    available_at: datetime | None
    explanation: str
    withheld: bool


class WithheldBy(msgspec.Struct):
    hold_id: int
    reason: str
    since: datetime
    hold_active: bool
    appealable: bool
    explanation: str


class PostingLine(msgspec.Struct):
    transaction_id: int
    transaction_kind: str
    account: str
    amount: Money
    created_at: datetime


class CommissionExplanation(msgspec.Struct):
    commission_id: int
    order_id: int
    beneficiary_id: int
    level: int
    status: str
    plan: PlanRef
    rule_path: list[str]
    rank_used: str
    rank_reason: str
    rank_now: str | None
    rate_bps: int
    base: Money
    amount: Money
    formula: str
    exclusions_checked: list[ExclusionCheck]
    reversed: Money
    net_amount: Money
    refunds: RefundRule
    hold_until: datetime | None
    available: Availability
    withheld: WithheldBy | None
    postings: list[PostingLine]
