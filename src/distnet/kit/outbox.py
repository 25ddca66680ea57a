"""Outbox: events are rows written in the business transaction, published by a worker after
commit, so nothing is lost when Redis is down and nothing is sent for a rolled-back change.

Every event records the request id bound in the log context (kit/logs: the request's
X-Request-ID, or in a worker the id its message carries), so that a request's log lines and those
of the jobs handling its events share it (the relay puts it on the dramatiq message)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import BindParameter, String, TextClause, bindparam, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.logs import request_id
from distnet.models import OutboxEvent

_TOPIC = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")


async def emit(
    session: AsyncSession, topic: str, payload: dict[str, Any], *, distributor_id: int | None = None
) -> uuid.UUID:
    event_id = uuid.uuid4()
    await session.execute(
        insert(OutboxEvent).values(
            id=event_id, topic=topic, payload=payload, distributor_id=distributor_id, request_id=request_id()
        )
    )
    return event_id


REQUEST_ID: BindParameter[str] = bindparam("request_id", callable_=request_id, type_=String)
"""``:request_id`` of :func:`insert_events`, valued at execution from the log context (also by
``kit.pg.fetch``); a caller may still pass ``request_id`` explicitly."""


def statement(sql: str) -> TextClause:
    """``text(sql)`` for a statement that writes events with :func:`insert_events`."""
    return text(sql).bindparams(REQUEST_ID)


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
    ``RETURNING 1``, for a writer that counts its events. The statement that holds it is made
    with :func:`statement` (its ``:request_id``)."""
    if (topic is None) == (topic_sql is None):
        raise ValueError("give topic or topic_sql")
    if topic is not None and not _TOPIC.match(topic):
        raise ValueError(f"not a topic name: {topic!r}")
    name = f"'{topic}'" if topic is not None else topic_sql
    sql = (
        f"INSERT INTO outbox_event (id, topic, distributor_id, payload, request_id)\n"
        f"SELECT gen_random_uuid(), {name}, {distributor_id},\n       {payload},\n"
        f"       CAST(:request_id AS text)\n  FROM {source}"
    )
    if where:
        sql += f"\n WHERE {where}"
    if order_by:
        sql += f"\n ORDER BY {order_by}"
    if returning:
        sql += "\nRETURNING 1"
    return sql
