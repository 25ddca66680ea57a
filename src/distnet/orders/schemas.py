from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from distnet.benefits.schemas import MyBenefits
from distnet.kit.contract import Money

ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Source = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Amount = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
Fingerprint = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Buyer(msgspec.Struct, forbid_unknown_fields=True):
    ref: Fingerprint | None = None
    device_id: Fingerprint | None = None
    ip: Annotated[str, msgspec.Meta(min_length=1, max_length=45)] | None = None
    payment_fingerprint: Fingerprint | None = None


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    external_id: ExternalId
    card_number: Annotated[str, msgspec.Meta(min_length=1, max_length=24)]
    amount: Amount
    source: Source = "api"
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] | None = None
    category: Label | None = None
    channel: Label | None = None
    placed_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    buyer: Buyer | None = None


class OrderBatch(msgspec.Struct, forbid_unknown_fields=True):
    orders: Annotated[list[Any], msgspec.Meta(min_length=1, max_length=1000)]
    """Each item is validated on its own: one bad order is reported in its result, the rest go in."""


class RefundCreate(msgspec.Struct, forbid_unknown_fields=True):
    external_id: ExternalId
    amount: Amount


class PersonRef(msgspec.Struct):
    """Another distributor as a seller sees them: referral code and masked name (张*), nothing else."""

    code: str
    name: str


class SellerOrderCommission(msgspec.Struct):
    level: int
    """1 = the seller, 2 = its sponsor, 3 = the sponsor's sponsor."""
    beneficiary: PersonRef
    own: bool
    """The line is the viewed distributor's own commission."""
    rate_bps: int
    base: str
    amount: str
    reversed: str
    net_amount: str
    status: str | None
    """Shown on the viewed distributor's own lines only: an upline's ``withheld`` would tell that
    another distributor is under a hold."""


class SellerOrderRefund(msgspec.Struct):
    id: int
    external_id: str
    amount: str
    created_at: datetime


class SellerOrder(msgspec.Struct):
    id: int
    source: str
    external_id: str
    status: str
    """completed | partially_refunded | refunded"""
    card_number: str
    amount: str
    currency: str
    category: str | None
    channel: str | None
    placed_at: datetime
    created_at: datetime
    refunded_amount: str
    remaining_amount: str
    buyer_ref: str | None
    """As the seller supplied it; ``****`` and a hash prefix on orders stored before it was kept."""
    commissions: list[SellerOrderCommission]
    refunds: list[SellerOrderRefund]


class SellerOrderPage(msgspec.Struct):
    items: list[SellerOrder]
    next_cursor: str | None


class CommissionLine(msgspec.Struct):
    """One level's commission on an order; ``reversed`` and ``net_amount`` follow refunds."""

    id: int
    level: int
    """1 = the seller, 2 = its sponsor, 3 = the sponsor's sponsor."""
    beneficiary_id: int
    rate_bps: int
    rank_used: str | None
    plan_version: int | None
    base: Money
    amount: Money
    reversed: Money
    net_amount: Money
    status: str
    hold_until: datetime | None
    withheld_hold_id: int | None


class RefundLine(msgspec.Struct):
    id: int
    external_id: str
    amount: Money
    created_at: datetime


class OrderView(msgspec.Struct):
    id: int
    source: str
    external_id: str
    status: str
    """completed | partially_refunded | refunded"""
    card_number: str
    seller_id: int
    amount: Money
    currency: str
    category: str | None
    channel: str | None
    placed_at: datetime
    created_at: datetime
    refunded_amount: Money
    remaining_amount: Money
    buyer_ref: str | None
    commissions: list[CommissionLine]
    refunds: list[RefundLine] | msgspec.UnsetType = msgspec.UNSET
    """Absent in batch results."""
    points_earned: list[PointsEarned] | msgspec.UnsetType = msgspec.UNSET
    rank_changes: list[RankChange] | msgspec.UnsetType = msgspec.UNSET
    """Only in the first answer, when the order changed ranks."""
    seller_benefits: MyBenefits | msgspec.UnsetType = msgspec.UNSET
    """Only in the first answer, when the seller's rank moved: the benefits as they are now."""


class PointsEarned(msgspec.Struct):
    distributor_id: int
    source: str
    points: int


class RankChange(msgspec.Struct):
    distributor_id: int
    from_: str = msgspec.field(name="from")
    to: str


class LevelAttribution(msgspec.Struct):
    level: int
    beneficiary_id: int | None
    commission_id: int | None
    note: str
    """Why this level has its commission, or has none."""
    qualification: SkippedQualification | msgspec.UnsetType = msgspec.UNSET
    """A level skipped because its beneficiary did not qualify: what the plan asked and what they had."""


class SkippedQualification(msgspec.Struct):
    own_sales: Money
    min_own_sales: Money
    period_days: int
    min_rank: str | None
    rank: str | None


class Attribution(msgspec.Struct):
    plan_version: int | None
    levels: list[LevelAttribution]


class OrderDetail(OrderView):
    attribution: Attribution | msgspec.UnsetType = msgspec.UNSET


class BatchProblem(msgspec.Struct):
    """The problem of one refused order (``type`` left out: ``code`` names it)."""

    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    hold: HoldRef | msgspec.UnsetType = msgspec.UNSET
    """``card-suspended`` and ``maintenance-in-progress``: the hold that refuses the sale."""
    holds: list[HoldRef] | msgspec.UnsetType = msgspec.UNSET
    retry_after: int | msgspec.UnsetType = msgspec.UNSET
    order_id: int | msgspec.UnsetType = msgspec.UNSET
    """``idempotency-conflict``: the order stored under this external_id."""


class FieldError(msgspec.Struct):
    field: str
    message: str


class HoldRef(msgspec.Struct):
    id: int
    reason: str
    since: str
    ends_at: str | None
    appealable: bool


class BatchResult(msgspec.Struct):
    index: int
    """Position in the request's ``orders``."""
    status: str
    """created | replayed | error"""
    status_code: int
    """What the single-order call would have answered."""
    order: OrderView | msgspec.UnsetType = msgspec.UNSET
    error: BatchProblem | msgspec.UnsetType = msgspec.UNSET


class BatchAnswer(msgspec.Struct):
    items: list[BatchResult]
    created: int
    replayed: int
    error: int
    commission_amount: Money
    """Commissions attributed to the created orders."""


class RefundView(msgspec.Struct):
    id: int
    order_id: int
    external_id: str
    amount: Money
    created_at: datetime
    order: OrderView
