"""Request bodies of the risk API (msgspec: unknown fields are refused with a 422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

Note = Annotated[str, msgspec.Meta(max_length=2000)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]


class HoldCreate(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    note: Note | None = None


class HoldLift(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    note: Note | None = None


class RuleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    mode: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    params: dict[str, Any] | None = None


class ScanCreate(msgspec.Struct, forbid_unknown_fields=True):
    rules: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=20)] | None = None


class CaseDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Annotated[str, msgspec.Meta(max_length=16)]
    note: Note | None = None


class MaintenanceScope(msgspec.Struct, forbid_unknown_fields=True):
    all: bool | None = None
    regions: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=32)]],
                       msgspec.Meta(min_length=1, max_length=200)] | None = None
    ranks: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=16)]],
                     msgspec.Meta(min_length=1, max_length=10)] | None = None


class MaintenanceCreate(msgspec.Struct, forbid_unknown_fields=True):
    starts_at: datetime
    ends_at: datetime
    message: Text
    scope: MaintenanceScope | None = None
    emergency: bool = False
    """Starts sooner than DISTNET_MAINTENANCE_MIN_NOTICE_HOURS: needs ``emergency_reason`` (audited)."""
    emergency_reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


Attachment = Annotated[str, msgspec.Meta(max_length=2000)] | dict[str, Any]


class AppealCreate(msgspec.Struct, forbid_unknown_fields=True):
    hold_id: Annotated[int, msgspec.Meta(ge=1, le=2**62)]
    statement: Text
    evidence: Annotated[list[Attachment], msgspec.Meta(max_length=50)] = []


class AppealDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Annotated[str, msgspec.Meta(max_length=16)]
    note: Note | None = None


class AppealMessage(msgspec.Struct, forbid_unknown_fields=True):
    message: Text
    attachments: Annotated[list[Attachment], msgspec.Meta(max_length=50)] = []
