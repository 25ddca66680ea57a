"""Event actors: dispatch an outbox event to its consumers; deliver one webhook."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from distnet.db import session_scope
from distnet.events import dispatch as dispatching
from distnet.events import webhooks
from distnet.events.relay import DISPATCH_ACTOR, EVENTS_QUEUE
from distnet.worker.broker import worker_sessionmaker

logger = logging.getLogger(__name__)


@dramatiq.actor(
    actor_name=DISPATCH_ACTOR,
    queue_name=EVENTS_QUEUE,
    max_retries=30,
    min_backoff=1_000,
    max_backoff=10 * 60 * 1000,
)
async def dispatch(event: dict[str, Any]) -> None:
    """Run every consumer of ``event``; a consumer that already handled it drops it (dedupe)."""
    await dispatching.dispatch_event(worker_sessionmaker(), event)


@dramatiq.actor(
    actor_name=webhooks.DELIVER_ACTOR,
    queue_name=webhooks.WEBHOOKS_QUEUE,
    max_retries=webhooks.MAX_RETRIES,
    min_backoff=webhooks.MIN_BACKOFF_MS,
    max_backoff=webhooks.MAX_BACKOFF_MS,
)
async def deliver_webhook(endpoint_id: int, event: dict[str, Any]) -> None:
    try:
        async with session_scope(worker_sessionmaker()) as session:
            await webhooks.deliver(session, endpoint_id, event)
    except webhooks.DeliveryFailed as exc:
        # one line per failed attempt, no traceback: a receiver being down is expected. Retry is
        # the exception dramatiq retries without logging it (no delay: the actor's backoff)
        retries = CurrentMessage.get_current_message()
        attempt = (retries.options.get("retries", 0) + 1) if retries is not None else 1
        logger.warning("%s (attempt %d of %d)", exc, attempt, webhooks.MAX_RETRIES + 1)
        delay = int(exc.retry_after_s * 1000) if exc.retry_after_s is not None else None
        raise dramatiq.Retry(str(exc), delay=delay) from None
