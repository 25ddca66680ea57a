"""Scans: run the detectors, turn findings into cases and (in enforce mode) holds.

Modes: ``shadow`` records a case only, ``review`` opens one for a reviewer, ``enforce`` opens one
and places holds at once, unless the rule's circuit breaker is open (``max_holds_per_hour``
automatic holds in the last hour), in which case the finding becomes a review case
(``action = review_breaker``). A finding whose (rule, subject_key) case exists is dropped: repeated
scans never duplicate, and a cleared finding is not raised again for the same evidence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import audit
from distnet.kit.auth import SYSTEM, Principal
from distnet.models import RiskScan
from distnet.risk import holds
from distnet.risk.detectors import DETECTORS, Finding, ScanContext
from distnet.risk.rules import Mode, RuleConfig, load_rules
from distnet.risk.schemas import ScanRuleStats, ScanStats, ScanView

Progress = Callable[[str, int, int], None]

SCAN_WORK_MEM = "256MB"
"""work_mem for the scan's statements (restored afterwards): the window aggregates over every order
(card x fingerprint groups, distributor hash joins) then stay in memory instead of spilling."""


async def breaker_open(session: AsyncSession, cfg: RuleConfig, extra: int) -> bool:
    placed = await session.scalar(
        text(
            "SELECT count(*) FROM hold WHERE source_type = 'rule' AND rule_name = :r "
            "AND started_at > now() - interval '1 hour'"
        ),
        {"r": cfg.name},
    )
    return int(placed or 0) + extra > cfg.params["max_holds_per_hour"]


async def apply_finding(
    session: AsyncSession,
    cfg: RuleConfig,
    finding: Finding,
    *,
    scan_id: int | None,
    actor: Principal = SYSTEM,
) -> tuple[int | None, int]:
    """Record one finding; returns (new case id or None, holds placed)."""
    busy = await session.scalar(
        text("""
        SELECT EXISTS (SELECT 1 FROM risk_case rc WHERE rc.rule = :r AND rc.anchor = :a AND rc.status = 'open')
            OR EXISTS (SELECT 1 FROM risk_case rc JOIN hold h ON h.risk_case_id = rc.id
                        WHERE rc.rule = :r AND rc.anchor = :a AND h.lifted_at IS NULL)
    """),
        {"r": cfg.name, "a": finding.anchor},
    )
    if busy:
        return None, 0
    if cfg.mode == Mode.shadow:
        status, action = "recorded", "recorded"
    elif cfg.mode == Mode.review:
        status, action = "open", "review"
    elif await breaker_open(session, cfg, len(finding.hold_distributor_ids)):
        status, action = "open", "review_breaker"
    else:
        status, action = "actioned", "hold"
    card_numbers = await _card_numbers(session, finding)
    subject = {
        "distributor_ids": list(finding.distributor_ids),
        "card_numbers": card_numbers,
        "order_ids": list(finding.order_ids),
        "hold_distributor_ids": list(finding.hold_distributor_ids),
    }
    case_id = await session.scalar(
        text("""
        INSERT INTO risk_case (rule, rule_version, reason, score, status, subject_key, anchor, subject, evidence,
                               action, scan_id)
        VALUES (:rule, :version, :reason, :score, :status, :key, :anchor, CAST(:subject AS jsonb),
                CAST(:evidence AS jsonb), :action, :scan)
        ON CONFLICT (rule, subject_key) DO NOTHING RETURNING id
    """),
        {
            "rule": cfg.name,
            "version": cfg.version,
            "reason": cfg.reason,
            "score": finding.score,
            "status": status,
            "key": finding.subject_key,
            "anchor": finding.anchor,
            "subject": json.dumps(subject),
            "evidence": json.dumps(finding.evidence, default=str),
            "action": action,
            "scan": scan_id,
        },
    )
    if case_id is None:
        return None, 0
    placed = 0
    if action == "hold":
        placed = await hold_for_case(
            session,
            actor,
            cfg.name,
            cfg.version,
            cfg.reason,
            case_id,
            finding.subject_key,
            finding.hold_distributor_ids,
            finding.evidence,
            subject,
        )
    return case_id, placed


async def hold_for_case(
    session: AsyncSession,
    actor: Principal,
    rule: str,
    version: int,
    reason: str,
    case_id: int,
    subject_key: str,
    distributor_ids: Any,
    evidence: dict[str, Any],
    subject: dict[str, Any],
) -> int:
    placed = 0
    for d in distributor_ids:
        hold_id = await holds.place_hold(
            session,
            actor,
            distributor_id=d,
            reason=reason,
            source_type="rule",
            subject_key=subject_key,
            rule_name=rule,
            rule_version=version,
            risk_case_id=case_id,
            evidence={
                "rule": rule,
                "rule_version": version,
                "risk_case_id": case_id,
                **evidence,
                "order_ids": subject.get("order_ids", []),
            },
        )
        placed += hold_id is not None
    return placed


async def _card_numbers(session: AsyncSession, finding: Finding) -> list[str]:
    if finding.card_ids:
        rows = await session.scalars(
            text("SELECT number FROM card WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id"),
            {"ids": list(finding.card_ids)},
        )
    else:
        rows = await session.scalars(
            text(
                "SELECT number FROM card WHERE distributor_id = ANY(CAST(:ids AS bigint[])) AND cancelled_at IS NULL "
                "ORDER BY distributor_id"
            ),
            {"ids": list(finding.hold_distributor_ids)},
        )
    return list(rows)


async def apply_findings(
    session: AsyncSession, cfg: RuleConfig, findings: list[Finding], *, scan_id: int | None
) -> tuple[int, int]:
    cases = placed = 0
    for finding in findings:
        case_id, n = await apply_finding(session, cfg, finding, scan_id=scan_id)
        cases += case_id is not None
        placed += n
    return cases, placed


async def run_scan(
    session: AsyncSession,
    actor: Principal = SYSTEM,
    *,
    only: list[str] | None = None,
    progress: Progress | None = None,
) -> ScanView:
    """Run every detector that is not off (or only the named ones) over the whole network."""
    rules = await load_rules(session)
    scan = RiskScan(triggered_by=actor.actor)
    session.add(scan)
    await session.flush()
    # debts repaid or netted since the last scan: their holds lift themselves first
    lifted = await holds.lift_settled_debt_holds(session)
    stats = ScanStats(debt_holds_lifted=len(lifted), rules={})
    todo = [cfg for name, cfg in rules.items() if cfg.mode != Mode.off and (only is None or name in only)]
    total_cases = total_holds = 0
    work_mem = await session.scalar(text("SELECT current_setting('work_mem')"))
    await session.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": SCAN_WORK_MEM})
    # rows read once per scan and shared by its detectors (ScanContext): one transaction, one now()
    scan_context = ScanContext(configs={cfg.name: cfg for cfg in todo})
    for i, cfg in enumerate(todo):
        if progress:
            progress(cfg.name, i, len(todo))
        started = time.perf_counter()
        findings = await DETECTORS[cfg.name](session, cfg, scan_context)
        cases, placed = await apply_findings(session, cfg, findings, scan_id=scan.id)
        stats.rules[cfg.name] = ScanRuleStats(
            mode=cfg.mode.value,
            version=cfg.version,
            findings=len(findings),
            cases_opened=cases,
            holds_placed=placed,
            seconds=round(time.perf_counter() - started, 3),
        )
        total_cases += cases
        total_holds += placed
    await session.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})
    if progress:
        progress("done", len(todo), len(todo))
    await session.execute(
        text(
            "UPDATE risk_scan SET finished_at = clock_timestamp(), cases_opened = :c, holds_placed = :h, "
            "stats = CAST(:s AS jsonb) WHERE id = :id"
        ),
        {"c": total_cases, "h": total_holds, "s": msgspec.json.encode(stats).decode(), "id": scan.id},
    )
    await audit.record(
        session,
        actor,
        "risk_scan.run",
        "risk_scan",
        scan.id,
        after={"cases_opened": total_cases, "holds_placed": total_holds},
    )
    return ScanView(id=scan.id, cases_opened=total_cases, holds_placed=total_holds, stats=stats)
