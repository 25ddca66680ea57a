"""Outbox: events are rows written in the business transaction, published by a worker after
commit, so nothing is lost when Redis is down and nothing is sent for a rolled-back change."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.models import OutboxEvent

_TOPIC = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")


async def emit(
    session: AsyncSession, topic: str, payload: dict[str, Any], *, distributor_id: int | None = None
) -> uuid.UUID:
    event_id = uuid.uuid4()
    await session.execute(
        insert(OutboxEvent).values(id=event_id, topic=topic, payload=payload, distributor_id=distributor_id)
    )
    return event_id


def insert_events(
    *,
    source: str,
    payload: str,
    distributor_id: str,
    topic: str | None = None,
    topic_sql: str | None = None,
    where: str | None = None,
    order_by: str | None = None,
    returning: bool = False,
) -> str:
    """The one ``INSERT INTO outbox_event … SELECT`` of set-based writers: one event per row of
    ``source`` (a FROM list: a CTE, a join), as :func:`emit` writes one. ``topic`` is the topic's
    name, or ``topic_sql`` an expression of the row (``'payout.' || status``); ``payload`` and
    ``distributor_id`` are expressions of the row (``jsonb_build_object(...)``). ``returning`` adds
    ``RETURNING 1``, for a writer that counts its events."""
    if (topic is None) == (topic_sql is None):
        raise ValueError("give topic or topic_sql")
    if topic is not None and not _TOPIC.match(topic):
        raise ValueError(f"not a topic name: {topic!r}")
    name = f"'{topic}'" if topic is not None else topic_sql
    sql = (
        f"INSERT INTO outbox_event (id, topic, distributor_id, payload)\n"
        f"SELECT gen_random_uuid(), {name}, {distributor_id},\n       {payload}\n  FROM {source}"
    )
    if where:
        sql += f"\n WHERE {where}"
    if order_by:
        sql += f"\n ORDER BY {order_by}"
    if returning:
        sql += "\nRETURNING 1"
    return sql
