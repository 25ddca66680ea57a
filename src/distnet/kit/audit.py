"""The audit log: who changed what, before and after. Every state change of holds, appeals, plans,
payout runs and manual network moves calls :func:`record` in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.keys import Principal
from distnet.models import AuditLog


async def record(
    session: AsyncSession,
    actor: Principal,
    action: str,
    subject_type: str,
    subject_id: object,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditLog).values(
            actor_key_id=actor.key_id,
            actor_staff_id=actor.staff_id,
            actor=actor.actor,
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id),
            before=before,
            after=after,
        )
    )
