"""Outbox relay: publish committed outbox events to the broker, then mark them published.

Invariant 9 (nothing is lost when Redis is down): an event is marked ``published_at`` in the same
transaction that locked it, and only after the broker accepted it. If Redis refuses, the rest of
the batch stays unpublished and waits for the next run; if our commit fails after the broker
accepted, the event is sent again later, which consumers drop by event id (``processed_event``).

Several relays may run at once: rows are claimed with ``FOR UPDATE SKIP LOCKED``. Within one relay
events go out in ``seq`` order, and a batch stops at the first refusal so none overtakes an earlier
one that is still waiting.

While Redis refuses, each relay process logs one line when the outage starts and one when it ends
(``kit.outage``); the periodic job skips its runs under an exponential backoff (1 s up to 10 s)
meanwhile, and once Redis is back it publishes batch after batch until the backlog is out (or
``CATCH_UP_SECONDS`` have passed; the next run goes on).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import dramatiq
from dramatiq import Message
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.events import repository as repo
from distnet.kit.logs import REQUEST_ID_OPTION
from distnet.kit.metrics import EVENTS
from distnet.kit.outage import Outage

logger = logging.getLogger(__name__)

DISPATCH_ACTOR = "events.dispatch"
EVENTS_QUEUE = "events"
DEFAULT_BATCH = 500
CATCH_UP_SECONDS = 5.0

# One outage record per broker this process relays to (the relay's actor runs on one event loop).
_outages: weakref.WeakKeyDictionary[dramatiq.Broker, Outage] = weakref.WeakKeyDictionary()


def broker_outage(broker: dramatiq.Broker) -> Outage:
    """The outage record of ``broker`` as seen by this process's relay."""
    outage = _outages.get(broker)
    if outage is None:
        outage = _outages[broker] = Outage("outbox relay: Redis (broker)", logger)
    return outage


def _default_broker() -> dramatiq.Broker:
    from distnet.worker.broker import broker

    return broker


@dataclass(frozen=True, slots=True)
class RelayResult:
    published: int
    waiting: int
    """Claimed but not accepted by the broker (left unpublished for the next run)."""
    error: str | None = None


def event_message(event: dict[str, Any], *, request_id: str | None = None) -> Message[Any]:
    """The dramatiq message for one event; its message id is the event id, and it carries the id
    of the request that wrote the event (``options["request_id"]``, worker/broker.RequestIds)."""
    return Message(
        queue_name=EVENTS_QUEUE,
        actor_name=DISPATCH_ACTOR,
        args=(event,),
        kwargs={},
        options={REQUEST_ID_OPTION: request_id} if request_id else {},
        message_id=event["id"],
    )


def event_dict(
    event_id: uuid.UUID | str,
    topic: str,
    payload: dict[str, Any],
    distributor_id: int | None,
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
    broker = broker or _default_broker()
    rows = (
        await session.execute(
            repo.UNPUBLISHED_BATCH,
            {"limit": limit},
        )
    ).all()
    if not rows:
        return RelayResult(published=0, waiting=0)

    messages = [
        event_message(event_dict(*cast(tuple[Any, ...], row)[:5]), request_id=row.request_id) for row in rows
    ]
    sent, exc = await asyncio.to_thread(_enqueue_all, broker, messages)
    accepted = [row.id for row in rows[:sent]]
    for row in rows[:sent]:
        EVENTS.labels(row.topic).inc()
    if accepted:
        await session.execute(
            repo.MARK_PUBLISHED,
            {"ids": accepted},
        )
    error = None
    if exc is not None:
        error = f"{type(exc).__name__}: {exc}"[:1000]
        # Counted on the first refused event only: the rest of the batch was never tried.
        await session.execute(
            repo.RECORD_REFUSAL,
            {"error": error, "id": rows[sent].id},
        )
        broker_outage(broker).failed(exc)
        logger.debug(
            "outbox relay: broker refused event %s (%s); %d waiting", rows[sent].id, error, len(rows) - sent
        )
    else:
        broker_outage(broker).succeeded()
    return RelayResult(published=sent, waiting=len(rows) - sent, error=error)


async def relay_job(
    session: AsyncSession,
    settings: object = None,
    *,
    broker: dramatiq.Broker | None = None,
    limit: int = DEFAULT_BATCH,
) -> int:
    """Periodic job (worker/jobs.py): publish batches until the outbox is empty (a backlog after an
    outage drains in one run, up to ``CATCH_UP_SECONDS``); skipped while backing off from a broker
    outage. Returns how many events were published."""
    broker = broker or _default_broker()
    if not broker_outage(broker).should_attempt():
        return 0
    published = 0
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        result = await relay_outbox(session, limit=limit, broker=broker)
        published += result.published
        if result.waiting or result.published < limit or time.monotonic() > deadline:
            return published
