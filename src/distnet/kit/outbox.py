"""Outbox: events are rows written in the business transaction, published by a worker after
commit, so nothing is lost when Redis is down and nothing is sent for a rolled-back change."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.models import OutboxEvent


async def emit(
    session: AsyncSession, topic: str, payload: dict[str, Any], *, distributor_id: int | None = None
) -> uuid.UUID:
    event_id = uuid.uuid4()
    await session.execute(
        insert(OutboxEvent).values(
            id=event_id, topic=topic, payload=payload, distributor_id=distributor_id
        )
    )
    return event_id
