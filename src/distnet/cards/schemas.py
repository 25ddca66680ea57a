from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

CardStatusName = Literal["active", "suspended", "frozen", "cancelled"]


class HoldSummary(msgspec.Struct):
    """An active hold on the card's owner (why the card is suspended)."""

    id: int
    reason: str
    since: datetime
    ends_at: datetime | None
    appealable: bool
    rule: str | None
    note: str | None


class CardView(msgspec.Struct):
    number: str
    status: CardStatusName
    distributor_id: int
    issued_at: datetime
    frozen_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    holds: list[HoldSummary]


class ReplacementCard(CardView):
    replaces: str
    """The number of the card this one replaces (now cancelled)."""


class CardBrief(msgspec.Struct):
    number: str
    status: CardStatusName
