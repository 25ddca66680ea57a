"""The payout run state machine: one table of allowed transitions, one function that applies them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from distnet.payouts.errors import InvalidRunTransition


class PayoutRunStatus(StrEnum):
    draft = "draft"
    approved = "approved"
    exported = "exported"
    completed = "completed"
    cancelled = "cancelled"


S = PayoutRunStatus
TRANSITIONS: dict[tuple[PayoutRunStatus, PayoutRunStatus], str] = {
    (S.draft, S.approved): "approved_at",  # four eyes: by a finance_approver who is not the creator
    (S.draft, S.cancelled): "cancelled_at",  # reserved money goes back to available
    (S.approved, S.exported): "exported_at",  # the bank file was produced
    (S.exported, S.completed): "completed_at",  # every item has a bank result
}


def transition(run, to: PayoutRunStatus, at: datetime) -> PayoutRunStatus:
    """Move ``run`` to ``to`` or refuse with 409; stamps the matching ``*_at`` column. Returns the
    previous status (for the audit record)."""
    current = PayoutRunStatus(run.status)
    stamp = TRANSITIONS.get((current, to))
    if stamp is None:
        raise InvalidRunTransition(
            f"payout run {run.id} is {current.value}; it cannot become {to.value}",
            extra={"current_status": current.value, "requested": to.value},
        )
    run.status = to.value
    setattr(run, stamp, at)
    return current
