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
