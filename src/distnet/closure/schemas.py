from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Reason = Literal["no_longer_selling", "privacy", "dissatisfied", "other"]
ReasonText = Annotated[str, msgspec.Meta(max_length=1000)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=12)]


class ClosureCreate(msgspec.Struct, forbid_unknown_fields=True):
    """The owner's request: the one-time code from ``POST /me/closure/code`` and a reason."""

    code: Code
    reason: Reason
    reason_text: ReasonText | None = None
    """Required when ``reason`` is ``other``."""


class ClosureRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /distributors/{id}/closure``: the owner gives ``code`` and ``reason``; an admin
    gives ``reason`` (and ``note``) and no code."""

    reason: Reason | None = None
    reason_text: ReasonText | None = None
    code: Code | None = None
    note: Annotated[str, msgspec.Meta(max_length=1000)] | None = None


class CodeSent(msgspec.Struct):
    channel: str
    sent_to: str
    expires_at: datetime


class Blocker(msgspec.Struct):
    code: str
    detail: str


class ClosureView(msgspec.Struct):
    distributor_id: int
    state: str
    """active | closing | closed | erased"""
    reason: str | None
    reason_text: str | None
    requested_at: datetime | None
    closure_waits_for_payout: bool
    waits_for: list[Blocker]
    """What a closing account still waits for (money to settle or be paid out)."""
    blockers: list[Blocker]
    """What would refuse a closure now (active accounts)."""
    closed_at: datetime | None
    erase_after: datetime | None
    """When personal data will be erased."""
    erased_at: datetime | None
    downline_moved_to: int | None = None
    children_moved: int | None = None
