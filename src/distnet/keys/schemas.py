from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class IssuedKey(msgspec.Struct):
    """A new API key: ``api_key`` is shown this once and stored only as its SHA-256."""

    api_key: str
    prefix: str
    roles: list[str]
    created_at: datetime
    revoked_prefixes: list[str]
    """The keys this one replaces; they stop working at once in this process and within
    ``kit.auth.PRINCIPAL_TTL`` seconds (5) in every other API process."""


ReferralCode = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
Contact = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


class RecoveryStart(msgspec.Struct, forbid_unknown_fields=True):
    code: ReferralCode
    """The distributor's referral code."""
    contact: Contact
    """The verified phone or e-mail on the account; the code is sent there."""


class RecoveryConfirm(msgspec.Struct, forbid_unknown_fields=True):
    code: ReferralCode
    contact: Contact
    verification_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]


class RecoveryStarted(msgspec.Struct):
    message: str
    expires_in_minutes: int
