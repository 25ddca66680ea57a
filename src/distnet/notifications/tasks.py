"""Sending e-mail and SMS: the ``notifications.send`` actor (one message per delivery, retried
with backoff; a provider's rate limit delays it without counting an attempt) and the job that
queues pending deliveries."""

from __future__ import annotations

import logging

import dramatiq
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import resolve_redis_url, session_scope
from distnet.kit.ratelimit import RateLimiter, parse_limits
from distnet.notifications import service
from distnet.settings import Settings, get_settings
from distnet.worker.broker import worker_sessionmaker

logger = logging.getLogger(__name__)

SEND_ACTOR = "notifications.send"
QUEUE = "notifications"


class DeliveryRetry(Exception):
    """The provider failed for now; dramatiq retries the message with backoff."""


@dramatiq.actor(
    actor_name=SEND_ACTOR,
    queue_name=QUEUE,
    max_retries=service.MAX_ATTEMPTS + 20,
    min_backoff=5_000,
    max_backoff=5 * 60 * 1000,
)
async def send(notification_id: int) -> None:
    await send_one(notification_id)


async def send_one(notification_id: int) -> None:
    """The actor's body: deliver, commit, then ask dramatiq for a retry when the provider failed
    for now or its rate limit is reached (the latter does not count an attempt)."""
    settings = get_settings()
    redis = aioredis.from_url(resolve_redis_url(settings))
    try:
        limiter = RateLimiter(redis, prefix=settings.notify.redis_prefix, limits=parse_limits(""))
        async with session_scope(worker_sessionmaker()) as session:
            outcome = await service.deliver(
                session, settings=settings, notification_id=notification_id, limiter=limiter
            )
    finally:
        await redis.aclose()
    if outcome.status == "wait":
        raise dramatiq.Retry(outcome.reason or "rate limited", delay=int((outcome.wait_s or 1) * 1000))
    if outcome.status == "retry":
        # the attempt and its reason are committed; the message is retried with backoff
        raise DeliveryRetry(f"notification {notification_id}: {outcome.reason}")
    logger.info("notification %s: %s %s", notification_id, outcome.status, outcome.reason or "")


async def queue_due(session: AsyncSession, settings: Settings) -> int:
    """Job ``notifications_send``: one send message per pending delivery. The messages are sent
    before this transaction commits; a delivery whose row is not stamped yet is simply sent (the
    row lock in ``deliver`` keeps it once)."""
    ids = await service.claim_due(session)
    for notification_id in ids:
        send.send(notification_id)
    return len(ids)
