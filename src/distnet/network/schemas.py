from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from distnet.profile.schemas import Email, RegistrationConsent

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

