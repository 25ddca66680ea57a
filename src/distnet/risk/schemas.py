"""Request bodies of the risk API (msgspec: unknown fields are refused with a 422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from distnet.kit.contract import Money

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
    rules: (
        Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=20)] | None
    ) = None


class CaseDecision(msgspec.Struct, forbid_unknown_fields=True):
    decision: Annotated[str, msgspec.Meta(max_length=16)]
    note: Note | None = None


class MaintenanceScope(msgspec.Struct, forbid_unknown_fields=True):
    all: bool | None = None
    regions: (
        Annotated[
            list[Annotated[str, msgspec.Meta(min_length=1, max_length=32)]],
            msgspec.Meta(min_length=1, max_length=200),
        ]
        | None
    ) = None
    ranks: (
        Annotated[
            list[Annotated[str, msgspec.Meta(min_length=1, max_length=16)]],
            msgspec.Meta(min_length=1, max_length=10),
        ]
        | None
    ) = None


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


# --------------------------------------------------------------------------- responses

Evidence = dict[str, Any]
"""What a rule found: free-form by rule (ids, counts, a graph); see the rule's description."""


class HoldSource(msgspec.Struct):
    type: str
    """``rule``, ``actor`` (placed by staff) or ``maintenance``."""
    rule: str | None
    rule_version: int | None
    risk_case_id: int | None
    maintenance_window_id: int | None
    placed_by: str | msgspec.UnsetType = msgspec.UNSET
    """Staff only."""


class WithheldMoney(msgspec.Struct):
    count: int
    amount: Money


class OrderBehindHold(msgspec.Struct):
    id: int
    external_id: str
    placed_at: datetime
    amount: Money
    currency: str
    refunded_amount: Money
    buyer_ref: str | None
    buyer_key: str | None
    """A short stand-in for the buyer fingerprint (equal buyers, equal keys)."""


class OrdersBehindHold(msgspec.Struct):
    total: int
    buyers: int
    items: list[OrderBehindHold]


class AppealCount(msgspec.Struct):
    submitted: int
    max: int


class HoldView(msgspec.Struct):
    id: int
    card_number: str | None
    distributor_id: int
    reason: str
    status: str
    """active | scheduled | lifted"""
    outcome: str | None
    """cleared | confirmed"""
    started_at: datetime
    ends_at: datetime | None
    lifted_at: datetime | None
    evidence: Evidence
    """Staff see it whole; the owner a summary (kinds and counts, never other people's ids)."""
    appealable: bool
    source: HoldSource
    note: str | None
    lift_note: str | None
    forfeit_at: datetime | None
    money_settled_at: datetime | None
    withheld: WithheldMoney
    how_to_appeal: str | None
    explanation: str | msgspec.UnsetType = msgspec.UNSET
    """GET /holds/{id}: the rule and its parameters in words, with the owner's own counts."""
    rule_params: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    """The rule version's parameters (by rule: see GET /risk/rules)."""
    orders: OrdersBehindHold | msgspec.UnsetType = msgspec.UNSET
    appeal_unavailable_reason: str | None | msgspec.UnsetType = msgspec.UNSET
    appeals: AppealCount | msgspec.UnsetType = msgspec.UNSET


class ScanRuleStats(msgspec.Struct):
    mode: str
    version: int
    findings: int
    cases_opened: int
    holds_placed: int
    seconds: float


class ScanStats(msgspec.Struct):
    debt_holds_lifted: int
    rules: dict[str, ScanRuleStats]


class ScanView(msgspec.Struct):
    id: int
    cases_opened: int
    holds_placed: int
    stats: ScanStats


class CaseSubject(msgspec.Struct):
    distributor_ids: list[int]
    card_numbers: list[str]
    order_ids: list[int]


class CaseView(msgspec.Struct):
    id: int
    rule: str
    rule_version: int | None
    reason: str
    score: float
    status: str
    """open | recorded | actioned | dismissed"""
    subject: CaseSubject
    evidence: Evidence
    action: str | None
    created_at: datetime
    scan_id: int | None
    resolved_at: datetime | None
    resolved_by: str | None


class DecidedCase(CaseView):
    holds_placed: int


class RulePrecision(msgspec.Struct):
    rule: str
    version: int | None
    holds: int
    appeals_rejected: int
    """Holds confirmed on appeal."""
    appeals_approved: int
    """Holds overturned on appeal."""
    precision: float | None
    """rejected / (rejected + approved); null before any decision."""


class ParamSpec(msgspec.Struct):
    type: str
    default: Any
    """Of the parameter's ``type``."""
    min: float | None
    max: float | None


class RuleView(msgspec.Struct):
    name: str
    reason: str
    mode: str
    """off | shadow | review | enforce"""
    version: int
    params: dict[str, Any]
    description: str
    param_schema: dict[str, ParamSpec]


class RuleWithPrecision(RuleView):
    precision: list[RulePrecision]


class Announcement(msgspec.Struct):
    id: int
    starts_at: str
    ends_at: str
    scope: dict[str, Any] | None
    """``{regions?, ranks?}``; null: everyone."""
    message: str
    status: str
    """upcoming | current | ended | cancelled"""
    emergency: bool


class CreatedWindow(Announcement):
    holds_placed: int


class WindowView(Announcement):
    created_by: str | None
    announced_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    cancelled_at: datetime | None


class AppealHold(msgspec.Struct):
    reason: str
    rule: str | None
    status: str
    outcome: str | None
    started_at: datetime
    evidence_summary: Evidence
    """The kinds of evidence and how much of each (what the owner sees), never other people's ids."""
    evidence: Evidence | msgspec.UnsetType = msgspec.UNSET
    """Reviewers only."""
    placed_by: str | None | msgspec.UnsetType = msgspec.UNSET


class AppealHistoryEntry(msgspec.Struct):
    at: datetime
    action: str
    from_: str | None = msgspec.field(name="from")
    to: str | None
    note: str | None
    attachments: list[Attachment]
    actor: str | None | msgspec.UnsetType = msgspec.UNSET
    """Reviewers only."""


class AppealSummary(msgspec.Struct):
    """An appeal in the reviewers' queue (no history)."""

    id: int
    hold_id: int
    distributor_id: int
    status: str
    submission_no: int
    statement: str
    evidence: list[Attachment]
    due_at: datetime
    paused: bool
    """Waiting for the owner: the SLA clock is stopped."""
    escalated: bool
    created_at: datetime
    decided_at: datetime | None
    hold: AppealHold
    assignee: str | None | msgspec.UnsetType = msgspec.UNSET
    claimed_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    decided_by: str | None | msgspec.UnsetType = msgspec.UNSET
    overdue: bool | msgspec.UnsetType = msgspec.UNSET


class AppealView(AppealSummary):
    history: list[AppealHistoryEntry] = []
