from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Version = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Phone = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^\+?[0-9 ()-]{4,31}$")]
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")]
Locale = Literal["zh", "en"]
ContactChannel = Literal["phone", "email"]
OptionalPurpose = Literal["marketing", "sms"]


class RegistrationConsent(msgspec.Struct, forbid_unknown_fields=True):
    """Consent given at registration (seed 004): the terms and privacy policy versions read, and
    the optional uses chosen."""

    terms_version: Version
    privacy_version: Version
    channel: Literal["api", "web", "app", "offline"] = "api"
    marketing: bool = False
    sms: bool = False
    """Notices by SMS (opt-in)."""


class ProfileView(msgspec.Struct):
    id: int
    locale: str
    phone: str | None
    """Masked."""
    phone_verified: bool
    email: str | None
    email_verified: bool


class ProfileUpdate(msgspec.Struct, forbid_unknown_fields=True):
    locale: Locale | None = None


class ContactChange(msgspec.Struct, forbid_unknown_fields=True):
    """A new phone or e-mail; it replaces the old one once the code sent to it is confirmed."""

    channel: ContactChannel
    value: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


class ContactVerify(msgspec.Struct, forbid_unknown_fields=True):
    channel: ContactChannel
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=12)]


class ConsentView(msgspec.Struct):
    purpose: str
    document_version: str
    channel: str
    granted_at: datetime
    withdrawn_at: datetime | None
    required: bool
    """Terms and privacy are required; marketing and SMS can be withdrawn at any time."""


class ConsentList(msgspec.Struct):
    items: list[ConsentView]


class ConsentGrant(msgspec.Struct, forbid_unknown_fields=True):
    purpose: OptionalPurpose
    document_version: Version | None = None
