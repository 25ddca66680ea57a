"""Webhooks: endpoints subscribe to topics; every matching event is POSTed to them, signed.

Signature (Stripe-style, so receivers can use familiar code)::

    X-Distnet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    X-Distnet-Event-Id:  <event id>   (receivers drop duplicates by it: delivery is at least once)
    X-Distnet-Topic:     <topic>

Delivery: ``events.deliver_webhook`` (tasks.py) posts with httpx; 2xx = delivered; 4xx other than
408/429 = the receiver rejects it, give up; anything else (5xx, 408, 429, network error) = retry with
exponential backoff (dramatiq Retries; ``Retry-After`` honoured).

Fan-out is an internal consumer (``webhooks.fanout``) of every topic: it runs in the dispatcher's
transaction with the ``processed_event`` row, and enqueues one delivery message per endpoint before
that transaction commits, so a redelivered event is not fanned out twice and a refused enqueue rolls
the claim back for a retry.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from dramatiq import Message
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.events.registry import on
from distnet.events.schemas import NewWebhookEndpoint, WebhookEndpointView
from distnet.kit import audit
from distnet.kit.auth import Principal
from distnet.kit.errors import NotFound, ValidationFailed
from distnet.models import WebhookEndpoint
from distnet.settings import WebhookSettings, read_section

logger = logging.getLogger(__name__)

DELIVER_ACTOR = "events.deliver_webhook"
WEBHOOKS_QUEUE = "webhooks"
SIGNATURE_HEADER = "X-Distnet-Signature"
EVENT_ID_HEADER = "X-Distnet-Event-Id"
TOPIC_HEADER = "X-Distnet-Topic"
SIGNATURE_TOLERANCE_S = 300
TIMEOUT_S = 10.0

# Retry schedule of a delivery (milliseconds; module attributes so tests can shorten them).
_SCHEDULE = read_section(WebhookSettings)
MIN_BACKOFF_MS = _SCHEDULE.min_backoff_ms
MAX_BACKOFF_MS = _SCHEDULE.max_backoff_ms
MAX_RETRIES = _SCHEDULE.max_retries


# --------------------------------------------------------------------------- signing


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Distnet-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance: int = SIGNATURE_TOLERANCE_S, now: float | None = None
) -> bool:
    """What a receiver does: check the HMAC and that the timestamp is recent (replay protection)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def envelope(event: dict[str, Any]) -> bytes:
    """The body posted for an event: stable JSON, the same bytes on every attempt."""
    body = {
        "id": event["id"],
        "topic": event["topic"],
        "created_at": event["created_at"],
        "distributor_id": event.get("distributor_id"),
        "data": event["payload"],
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


# --------------------------------------------------------------------------- endpoints


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def topic_matches(subscribed: list[str], topic: str) -> bool:
    family = topic.split(".", 1)[0] + ".*"
    return any(t in ("*", topic, family) for t in subscribed)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("url must be an absolute http(s) URL", field="url")


def endpoint_view(endpoint: WebhookEndpoint) -> WebhookEndpointView:
    return WebhookEndpointView(
        id=endpoint.id,
        url=endpoint.url,
        topics=list(endpoint.topics),
        active=endpoint.active,
        created_at=endpoint.created_at,
    )


async def create_endpoint(
    session: AsyncSession, principal: Principal, *, url: str, topics: list[str], secret: str | None = None
) -> NewWebhookEndpoint:
    _check_url(url)
    if not topics:
        raise ValidationFailed("subscribe to at least one topic (or '*')", field="topics")
    secret = secret or new_secret()
    endpoint = WebhookEndpoint(url=url, topics=sorted(set(topics)), secret=secret, active=True)
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    await audit.record(
        session,
        principal,
        "webhook.created",
        "webhook_endpoint",
        endpoint.id,
        after={"url": url, "topics": endpoint.topics},
    )
    # the secret is shown once, at creation
    return NewWebhookEndpoint(**msgspec.structs.asdict(endpoint_view(endpoint)), secret=secret)


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpointView]:
    rows = (await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))).all()
    return [endpoint_view(e) for e in rows]


async def deactivate_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: int
) -> WebhookEndpointView:
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    if endpoint.active:
        await session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(active=False)
        )
        await audit.record(
            session,
            principal,
            "webhook.deactivated",
            "webhook_endpoint",
            endpoint_id,
            before={"active": True},
            after={"active": False},
        )
        endpoint.active = False
    return endpoint_view(endpoint)


# --------------------------------------------------------------------------- fan-out


def delivery_message(endpoint_id: int, event: dict[str, Any]) -> Message[Any]:
    return Message(
        queue_name=WEBHOOKS_QUEUE,
        actor_name=DELIVER_ACTOR,
        args=(endpoint_id, event),
        kwargs={},
        options={"min_backoff": MIN_BACKOFF_MS, "max_backoff": MAX_BACKOFF_MS, "max_retries": MAX_RETRIES},
        message_id=f"{event['id']}:{endpoint_id}",
    )


@on("*", consumer="webhooks.fanout")
async def fan_out(session: AsyncSession, event: dict[str, Any]) -> None:
    endpoints = (
        await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.topics).where(WebhookEndpoint.active)
        )
    ).all()
    targets = [endpoint_id for endpoint_id, topics in endpoints if topic_matches(topics, event["topic"])]
    if not targets:
        return
    from distnet.worker.broker import broker

    messages = [delivery_message(endpoint_id, event) for endpoint_id in targets]
    # Enqueued before our transaction commits: if the broker refuses, the processed_event row rolls
    # back with it and the event is retried; if the commit fails, a retry may deliver twice, which
    # receivers drop by X-Distnet-Event-Id.
    await asyncio.to_thread(lambda: [broker.enqueue(m) for m in messages])


# --------------------------------------------------------------------------- delivery


class DeliveryFailed(Exception):
    """Transient failure (5xx, 408, 429, network): dramatiq retries the delivery with backoff."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    delivered: bool
    status: int | None
    gave_up: bool = False


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def deliver(
    session: AsyncSession, endpoint_id: int, event: dict[str, Any], *, client: httpx.AsyncClient | None = None
) -> DeliveryOutcome:
    """One delivery attempt. Raises :class:`DeliveryFailed` when it should be retried."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or not endpoint.active:
        logger.info("webhook %s gone or inactive; dropping event %s", endpoint_id, event["id"])
        return DeliveryOutcome(delivered=False, status=None, gave_up=True)
    body = envelope(event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "distnet-webhooks/1",
        SIGNATURE_HEADER: sign(endpoint.secret, body),
        EVENT_ID_HEADER: event["id"],
        TOPIC_HEADER: event["topic"],
    }
    try:
        if client is None:
            async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as own:
                response = await own.post(endpoint.url, content=body, headers=headers)
        else:
            response = await client.post(endpoint.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook {endpoint_id}: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return DeliveryOutcome(delivered=True, status=status)
    if 400 <= status < 500 and status not in (408, 429):
        logger.warning("webhook %s rejected event %s with %d; giving up", endpoint_id, event["id"], status)
        return DeliveryOutcome(delivered=False, status=status, gave_up=True)
    raise DeliveryFailed(f"webhook {endpoint_id}: HTTP {status}", retry_after_s=_retry_after(response))
