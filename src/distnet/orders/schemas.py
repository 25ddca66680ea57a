from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

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
