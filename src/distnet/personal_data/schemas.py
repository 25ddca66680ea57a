"""The owner's copy of their data (GET /me/export, PIPL right of access)."""

from __future__ import annotations

from datetime import date, datetime

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


class ExportNotification(msgspec.Struct):
    id: int
    kind: str
    channel: str
    """inbox, email or sms: one row per channel the notice went to."""
    subject: str
    body: str
    """In the owner's locale; one-time codes shown as ``******`` (never kept after use)."""
    status: str
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None
    failure: str | None


class ExportNotificationPreferences(msgspec.Struct):
    email_enabled: bool
    sms_enabled: bool
    muted_kinds: list[str]


class ExportConsent(msgspec.Struct):
    purpose: str
    document_version: str
    channel: str
    granted_at: datetime
    withdrawn_at: datetime | None


class ExportPreviousContact(msgspec.Struct):
    """A verified phone or e-mail that a confirmed change replaced, masked: whoever holds the
    account now (perhaps not its owner) must not learn the address it was taken from."""

    channel: str
    address: str | None
    replaced_at: datetime


class ExportPayoutAccount(msgspec.Struct):
    """Every version, decrypted: the owner's own data."""

    version_id: int
    method: str
    holder_name: str | None
    account_number: str | None
    bank_name: str | None
    bank_branch: str | None
    resident_id: str | None
    status: str
    cooling_until: datetime
    created_at: datetime
    superseded_at: datetime | None


class ExportPayout(msgspec.Struct):
    item_id: int
    run_id: int
    gross: str
    tax: str
    net: str
    currency: str
    status: str
    tax_month: date | None
    bank_reference: str | None
    failure_reason: str | None
    result_at: datetime | None
    return_reference: str | None
    return_reason: str | None
    returned_at: datetime | None


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
    notifications: list[ExportNotification]
    notification_preferences: ExportNotificationPreferences
    previous_contacts: list[ExportPreviousContact]
    consents: list[ExportConsent]
    payout_accounts: list[ExportPayoutAccount]
    payouts: list[ExportPayout]
    audit: list[ExportAuditEntry]
