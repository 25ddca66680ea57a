"""The owner's copy of their data (GET /me/export, PIPL right of access)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from distnet.orders.schemas import PersonRef, SellerOrder
from distnet.risk.schemas import Attachment, HoldView


class ExportProfile(msgspec.Struct):
    id: int
    code: str
    name: str
    sponsor: PersonRef | None
    rank: str
    region: str | None
    status: str
    joined_at: datetime
    closed_at: datetime | None
    erase_after: datetime | None
    erased_at: datetime | None
    phone: str | None
    """Personal fields decrypted: this copy is for their owner."""
    device_id: str | None
    ip: str | None
    payment_fingerprint: str | None
    bank_account: str | None
    email: str | None = None
    phone_verified_at: datetime | None = None
    email_verified_at: datetime | None = None
    locale: str | None = None


class ExportCard(msgspec.Struct):
    number: str
    issued_at: datetime
    frozen_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    replaced_by: str | None


class ExportKey(msgspec.Struct):
    name: str
    prefix: str
    roles: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ExportCommission(msgspec.Struct):
    id: int
    order_id: int
    level: int
    rank_used: str
    rate_bps: int
    base: str
    amount: str
    reversed: str
    status: str
    hold_until: datetime
    available_at: datetime | None
    paid_at: datetime | None
    withheld_hold_id: int | None
    created_at: datetime


class ExportPosting(msgspec.Struct):
    transaction_id: int
    kind: str
    account: str
    currency: str
    amount: str
    commission_id: int | None
    memo: str | None
    created_at: datetime


class ExportBalance(msgspec.Struct):
    account: str
    currency: str
    balance: str


class ExportAppealMessage(msgspec.Struct):
    at: datetime
    by: str
    """``you``, ``reviewer`` or ``system``: reviewers are not named in the owner's copy."""
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    attachments: list[Attachment]


class ExportAppeal(msgspec.Struct):
    id: int
    hold_id: int
    statement: str
    evidence: list[Attachment]
    status: str
    submission_no: int
    created_at: datetime
    decided_at: datetime | None
    messages: list[ExportAppealMessage]


class ExportAuditEntry(msgspec.Struct):
    at: datetime
    action: str
    by: str


class PersonalDataExport(msgspec.Struct):
    format: str
    exported_at: datetime
    profile: ExportProfile
    cards: list[ExportCard]
    api_keys: list[ExportKey]
    orders: list[SellerOrder]
    commissions: list[ExportCommission]
    ledger: list[ExportPosting]
    balances: list[ExportBalance]
    holds: list[HoldView]
    """As GET /holds/{id} shows them to their owner."""
    appeals: list[ExportAppeal]
    notifications: list[dict[str, Any]]
    """Rows of the notification domain's tables, as stored (empty where the tables do not exist)."""
    consents: list[dict[str, Any]]
    audit: list[ExportAuditEntry]
