"""Unpaid balance: a debt (the ``owed`` account below zero) left unpaid past its grace period."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.money import format_amount
from distnet.risk.detectors.base import Finding, ScanContext
from distnet.risk.rules import RuleConfig


async def unpaid_balance(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    """Debt = -balance of the distributor's ``owed`` account. Its age counts from the posting that
    last took the account from >= 0 to < 0 (so a debt that was repaid and came back starts anew)."""
    p = cfg.params
    rows = (
        await session.execute(
            text("""
        WITH debt AS (SELECT id, distributor_id, -balance AS owed FROM ledger_account
                       WHERE kind = 'owed' AND balance <= -:min_owed AND distributor_id IS NOT NULL),
        run AS (SELECT p.account_id, p.id, p.created_at,
                       sum(p.amount) OVER (PARTITION BY p.account_id ORDER BY p.id) AS bal
                  FROM ledger_posting p JOIN debt ON debt.id = p.account_id),
        flips AS (SELECT account_id, id, created_at, bal,
                         lag(bal, 1, 0::numeric) OVER (PARTITION BY account_id ORDER BY id) AS prev FROM run),
        since AS (SELECT DISTINCT ON (account_id) account_id, id AS posting_id, created_at
                    FROM flips WHERE bal < 0 AND prev >= 0 ORDER BY account_id, id DESC)
        SELECT debt.distributor_id, debt.owed, since.posting_id, since.created_at
          FROM debt JOIN since ON since.account_id = debt.id
         WHERE since.created_at <= now() - CAST(:grace AS interval)
         ORDER BY debt.distributor_id
    """),
            {"min_owed": cfg.money("min_owed"), "grace": timedelta(days=p["grace_days"])},
        )
    ).all()
    return [
        Finding(
            rule="unpaid_balance",
            anchor=f"debt:{r.distributor_id}",
            subject_key=f"debt:{r.distributor_id}:{r.posting_id}",
            score=int(r.owed) / max(1, cfg.money("min_owed")),
            hold_distributor_ids=(r.distributor_id,),
            distributor_ids=(r.distributor_id,),
            evidence={
                "owed": format_amount(int(r.owed)),
                "owed_since": r.created_at.isoformat(),
                "grace_days": p["grace_days"],
                "min_owed": p["min_owed"],
            },
        )
        for r in rows
    ]
