"""Risk cases: the list reviewers work from, a reviewer's decision on an open case, and each rule
version's precision from appeal outcomes (an approved appeal marks its hold a false positive, a
rejected one a true positive)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import audit
from distnet.kit.auth import Principal
from distnet.kit.contract import Page
from distnet.kit.errors import ValidationFailed
from distnet.kit.pagination import decode_cursor, encode_cursor
from distnet.models import RiskCase
from distnet.risk import repository as repo
from distnet.risk.errors import CaseClosed, CaseNotFound
from distnet.risk.rules import RULES
from distnet.risk.scan import hold_for_case
from distnet.risk.schemas import CaseSubject, CaseView, DecidedCase, RulePrecision

CASE_STATUSES = ("open", "recorded", "actioned", "dismissed")


def _subject(subject: dict[str, Any]) -> CaseSubject:
    return CaseSubject(
        distributor_ids=list(subject.get("distributor_ids", [])),
        card_numbers=list(subject.get("card_numbers", [])),
        order_ids=list(subject.get("order_ids", [])),
    )


def _case_fields(c: RiskCase) -> dict[str, Any]:
    return dict(
        id=c.id,
        rule=c.rule,
        rule_version=c.rule_version,
        reason=c.reason,
        score=float(c.score),
        status=c.status,
        subject=_subject(c.subject),
        evidence=c.evidence,
        action=c.action,
        created_at=c.created_at,
        scan_id=c.scan_id,
        resolved_at=c.resolved_at,
        resolved_by=c.resolved_by,
    )


def case_view(c: RiskCase) -> CaseView:
    return CaseView(**_case_fields(c))


async def list_cases(
    session: AsyncSession, *, status: str | None, rule: str | None, limit: int, cursor: str | None
) -> Page[CaseView]:
    if status is not None and status not in CASE_STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(CASE_STATUSES)}", field="status")
    if rule is not None and rule not in RULES:
        raise ValidationFailed(f"unknown rule {rule!r}", field="rule")
    after = decode_cursor(cursor, 1)
    stmt = select(RiskCase)
    if status:
        stmt = stmt.where(RiskCase.status == status)
    if rule:
        stmt = stmt.where(RiskCase.rule == rule)
    if after is not None:
        if not isinstance(after[0], int):
            raise ValidationFailed("cursor is not valid", field="cursor")
        stmt = stmt.where(RiskCase.id < after[0])
    rows = list(await session.scalars(stmt.order_by(RiskCase.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=[case_view(c) for c in rows], next_cursor=encode_cursor(rows[-1].id) if more else None)


async def get_case(session: AsyncSession, case_id: int, *, lock: bool = False) -> RiskCase:
    stmt = select(RiskCase).where(RiskCase.id == case_id)
    if lock:
        stmt = stmt.with_for_update()
    case = await session.scalar(stmt)
    if case is None:
        raise CaseNotFound(f"no risk case {case_id}")
    return case


async def decide_case(
    session: AsyncSession, principal: Principal, case_id: int, *, decision: str, note: str | None
) -> DecidedCase:
    """A reviewer acts on an open case: ``hold`` suspends its subjects, ``dismiss`` closes it."""
    if decision not in ("hold", "dismiss"):
        raise ValidationFailed("decision must be hold or dismiss", field="decision")
    case = await get_case(session, case_id, lock=True)
    if case.status not in ("open", "recorded"):
        raise CaseClosed(f"case {case_id} is {case.status}")
    before = case.status
    placed = 0
    if decision == "hold":
        placed = await hold_for_case(
            session,
            principal,
            case.rule,
            case.rule_version,
            case.reason,
            case.id,
            case.subject_key,
            case.subject.get("hold_distributor_ids", []),
            case.evidence,
            case.subject,
        )
        case.status, case.action = "actioned", "hold"
    else:
        case.status = "dismissed"
    case.resolved_at = datetime.now(UTC)
    case.resolved_by = principal.actor
    await session.flush()
    await audit.record(
        session,
        principal,
        f"risk_case.{decision}",
        "risk_case",
        case.id,
        before={"status": before},
        after={"status": case.status, "holds_placed": placed, "note": note},
    )
    return DecidedCase(**_case_fields(case), holds_placed=placed)


async def precision(session: AsyncSession) -> list[RulePrecision]:
    rows = await session.execute(repo.RULE_PRECISION)
    out = []
    for r in rows:
        decided = int(r.confirmed) + int(r.overturned)
        out.append(
            RulePrecision(
                rule=r.rule_name,
                version=r.rule_version,
                holds=int(r.holds),
                appeals_rejected=int(r.confirmed),
                appeals_approved=int(r.overturned),
                precision=round(int(r.confirmed) / decided, 4) if decided else None,
            )
        )
    return out
