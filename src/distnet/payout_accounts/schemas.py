from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

PayoutMethod = Literal["bank_card", "alipay", "wechat"]


class PayoutAccountPut(msgspec.Struct, forbid_unknown_fields=True):
    method: PayoutMethod
    holder_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    account_number: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    """Bank card number (12-19 digits, Luhn), Alipay mobile or e-mail, or WeChat openid."""
    resident_id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    """The holder's resident ID number (18 characters, GB 11643 check character): tax filing needs it."""
    bank_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    """Required for bank cards."""
    bank_branch: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    """One-time code sent to the owner: needed by the owner to change an existing account."""


class PayoutAccount(msgspec.Struct):
    distributor_id: int
    version_id: int
    method: PayoutMethod
    holder_name: str | None
    """Masked: the first character only."""
    account_number: str | None
    """Masked: the last four characters only (null for an unconfirmed migrated account)."""
    resident_id: str | None
    """Masked: the last four characters only."""
    bank_name: str | None
    bank_branch: str | None
    status: Literal["active", "needs_confirmation"]
    cooling_until: datetime
    cooling_off: bool
    """True while payouts to this account are skipped after a change."""
    created_at: datetime
