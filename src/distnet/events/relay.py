"""Outbox relay: publish committed outbox events to the broker, then mark them published.

Invariant 9 (nothing is lost when Redis is down): an event is marked ``published_at`` in the same
transaction that locked it, and only after the broker accepted it. If Redis refuses, the rest of
the batch stays unpublished and waits for the next run; if our commit fails after the broker
accepted, the event is sent again later, which consumers drop by event id (``processed_event``).

Several relays may run at once: rows are claimed with ``FOR UPDATE SKIP LOCKED``. Within one relay
events go out in ``seq`` order, and a batch stops at the first refusal so none overtakes an earlier
one that is still waiting.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from dramatiq import Message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)

DISPATCH_ACTOR = "events.dispatch"
EVENTS_QUEUE = "events"
DEFAULT_BATCH = 500


@dataclass(frozen=True, slots=True)
class RelayResult:
    published: int
    waiting: int
    """Claimed but not accepted by the broker (left unpublished for the next run)."""
    error: str | None = None


def event_message(event: dict[str, Any]) -> Message[Any]:
    """The dramatiq message for one event; its message id is the event id."""
    return Message(
        queue_name=EVENTS_QUEUE,
        actor_name=DISPATCH_ACTOR,
        args=(event,),
        kwargs={},
        options={},
        message_id=event["id"],
    )


def event_dict(
    event_id: uuid.UUID | str, topic: str, payload: dict[str, Any], distributor_id: int | None,
    created_at: datetime,
) -> dict[str, Any]:
    """The JSON shape handlers and webhooks receive (see events/registry.py)."""
    return {
        "id": str(event_id),
        "topic": topic,
        "payload": payload,
        "distributor_id": distributor_id,
        "created_at": created_at.isoformat(),
    }


def _enqueue_all(broker: dramatiq.Broker, messages: list[Message[Any]]) -> tuple[int, BaseException | None]:
    """Enqueue in order; stop at the first failure. Runs in a thread: redis-py is blocking."""
    for sent, message in enumerate(messages):
        try:
            broker.enqueue(message)
        except Exception as exc:  # any broker failure means "not accepted": keep the event
            return sent, exc
    return len(messages), None


async def relay_outbox(
    session: AsyncSession, *, limit: int = DEFAULT_BATCH, broker: dramatiq.Broker | None = None
) -> RelayResult:
    """Publish up to ``limit`` unpublished events; the caller commits (or uses ``session_scope``)."""
    if broker is None:
        from distnet.worker.broker import broker as default_broker

        broker = default_broker
    rows = (
        await session.execute(
            text(
                """
                SELECT id, topic, payload, distributor_id, created_at
                  FROM outbox_event
                 WHERE published_at IS NULL
                 ORDER BY seq
                 LIMIT :limit
                   FOR UPDATE SKIP LOCKED
                """
            ),
            {"limit": limit},
        )
    ).all()
    if not rows:
        return RelayResult(published=0, waiting=0)

    messages = [event_message(event_dict(*row)) for row in rows]
    sent, exc = await asyncio.to_thread(_enqueue_all, broker, messages)
    accepted = [row.id for row in rows[:sent]]
    if accepted:
        await session.execute(
            text(
                "UPDATE outbox_event SET published_at = now(), attempts = attempts + 1, last_error = NULL "
                "WHERE id = ANY(:ids)"
            ),
            {"ids": accepted},
        )
    error = None
    if exc is not None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        # Counted on the first refused event only: the rest of the batch was never tried.
        await session.execute(
            text("UPDATE outbox_event SET attempts = attempts + 1, last_error = :error WHERE id = :id"),
            {"error": error, "id": rows[sent].id},
        )
        logger.warning("outbox relay: broker refused event %s (%s); %d waiting", rows[sent].id, error,
                       len(rows) - sent)
    return RelayResult(published=sent, waiting=len(rows) - sent, error=error)


async def relay_job(session: AsyncSession, settings: object = None) -> int:
    """Periodic job (worker/jobs.py): one batch. Returns how many events were published."""
    result = await relay_outbox(session, limit=DEFAULT_BATCH)
    return result.published
