"""Deliver one event to its internal consumers, at least once, each consumer exactly once in effect.

Each handler runs in its own transaction together with the insert of ``processed_event(consumer,
event_id)``: if the row exists the event was handled already and is dropped; if the handler fails,
both roll back and the event is retried for that consumer only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.db import session_scope
from distnet.events import repository as repo
from distnet.events.registry import Handler, load_handlers

logger = logging.getLogger(__name__)


class DispatchFailed(Exception):
    """Some consumers failed; the event is retried and the others drop it as a duplicate."""


@dataclass
class DispatchResult:
    handled: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


async def claim(session: AsyncSession, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id`` in this transaction; False if it already did.

    A concurrent redelivery blocks on the primary key until the first transaction ends, then
    sees the conflict: two workers never both run a handler for one event.
    """
    inserted = await session.execute(
        repo.CLAIM_EVENT,
        {"consumer": consumer[:64], "event_id": event_id},
    )
    return inserted.first() is not None


def consumers_for(topic: str, handlers: dict[str, list[tuple[str, Handler]]]) -> list[tuple[str, Handler]]:
    """Handlers of ``topic``, of its family (``"hold.*"``) and of every topic (``"*"``)."""
    found = list(handlers.get(topic, []))
    family = topic.split(".", 1)[0] + ".*"
    if family != topic:
        found += handlers.get(family, [])
    if topic != "*":
        found += handlers.get("*", [])
    return found


async def dispatch_event(
    sessionmaker: async_sessionmaker[AsyncSession],
    event: dict[str, Any],
    *,
    handlers: dict[str, list[tuple[str, Handler]]] | None = None,
) -> DispatchResult:
    handlers = load_handlers() if handlers is None else handlers
    result = DispatchResult()
    for consumer, handler in consumers_for(event["topic"], handlers):
        try:
            async with session_scope(sessionmaker) as session:
                if not await claim(session, consumer, event["id"]):
                    result.duplicates.append(consumer)
                    continue
                await handler(session, event)
        except Exception:
            logger.exception("consumer %s failed on event %s (%s)", consumer, event["id"], event["topic"])
            result.failed.append(consumer)
        else:
            if consumer not in result.duplicates:
                result.handled.append(consumer)
    if result.failed:
        raise DispatchFailed(f"event {event['id']}: consumers failed: {', '.join(result.failed)}")
    return result
