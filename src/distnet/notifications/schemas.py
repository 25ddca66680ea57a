from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

Kind = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class NotificationView(msgspec.Struct):
    id: int
    kind: str
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None


class Inbox(msgspec.Struct):
    unread_count: int
    items: list[NotificationView]
    next_cursor: str | None


class ReadResult(msgspec.Struct):
    id: int
    unread_count: int


class PreferencesView(msgspec.Struct):
    email_enabled: bool
    sms_enabled: bool
    muted_kinds: list[str]
    sms_consent: bool
    """SMS is sent only with an active ``sms`` consent (POST /api/v1/me/consents)."""
    email_verified: bool
    phone_verified: bool
    mutable_kinds: list[str]
    """Kinds that can be muted (sent to the inbox only, never by e-mail or SMS)."""
    mandatory_kinds: list[str]
    """Security and legal notices: never muted (only turning a whole channel off stops them)."""


class PreferencesUpdate(msgspec.Struct, forbid_unknown_fields=True):
    email_enabled: bool | None = None
    sms_enabled: bool | None = None
    muted_kinds: Annotated[list[Kind], msgspec.Meta(max_length=50)] | None = None
    """Kinds to receive in the inbox only; a mandatory kind is refused (422 naming ``muted_kinds``)."""
