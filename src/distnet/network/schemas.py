from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from distnet.cards.schemas import CardBrief, CardView
from distnet.kit.contract import Money
from distnet.ledger.schemas import Balances
from distnet.profile.schemas import Email, RegistrationConsent
from distnet.ranks.schemas import RankProgress

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class DistributorCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    sponsor_code: Code | None = None
    phone: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^\+?[0-9 ()-]{4,31}$")] | None = None
    region: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    device_id: Short | None = None
    ip: Annotated[str, msgspec.Meta(max_length=45)] | None = None
    payment_fingerprint: Short | None = None
    bank_account: Short | None = None
    email: Email | None = None
    locale: Literal["zh", "en"] = "zh"
    consent: RegistrationConsent | None = None
    """The terms and privacy policy versions agreed to; required for self-registration."""


class SponsorMove(msgspec.Struct, forbid_unknown_fields=True):
    sponsor_id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class DistributorView(msgspec.Struct):
    id: int
    code: str
    """Referral code: what a recruit gives as ``sponsor_code``."""
    name: str
    sponsor_id: int | None
    rank: str
    region: str | None
    status: str
    depth: int
    joined_at: datetime
    closed_at: datetime | None
    card: CardView | None
    """The live card, or for a closed account the last one (cancelled)."""


class Me(DistributorView):
    balances: Balances
    rank_progress: RankProgress


class ContactVerification(msgspec.Struct):
    channel: str
    sent_to: str
    """Masked."""
    expires_at: datetime
    confirm_with: str


class Registration(msgspec.Struct):
    id: int
    code: str
    name: str
    sponsor_id: int | None
    rank: str
    region: str | None
    status: str
    depth: int
    joined_at: datetime
    closed_at: datetime | None
    card: CardBrief
    api_key: str
    """The new distributor's API key (role ``distributor``): shown once, never again."""
    contact_verification: list[ContactVerification]
    """A one-time code was sent to each contact given; the card works meanwhile."""


class UplineMember(msgspec.Struct):
    id: int
    code: str
    level: int
    """1 = the sponsor."""


class DownlineMember(msgspec.Struct):
    """A member as their upline may see them: never contact or payout data."""

    id: int
    code: str
    name: str
    """Masked (王*), or a placeholder once erased."""
    level: int
    rank: str
    joined_at: datetime
    sales: Money
    """Net sales in the period."""


class SalesPeriod(msgspec.Struct):
    from_: datetime = msgspec.field(name="from")
    to: datetime


class DownlinePage(msgspec.Struct):
    items: list[DownlineMember]
    next_cursor: str | None
    period: SalesPeriod
    """The period of the members' ``sales``: [from, to)."""


class TeamLevel(msgspec.Struct):
    level: int
    count: int
    sales: Money
    """Net sales (after refunds) of the level's members."""


class TeamStats(msgspec.Struct):
    total: int
    by_level: list[TeamLevel]
