"""A real SMTP server (aiosmtpd) on loopback, settings pointing at it, and helpers that run the
outbox consumers and the deliveries the way the worker does."""

from __future__ import annotations

import dataclasses
import secrets
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import text

from distnet.db import session_scope
from distnet.events.dispatch import dispatch_event
from distnet.events.registry import load_handlers
from distnet.events.relay import event_dict
from distnet.kit.crypto import encrypt, keyed_hash
from distnet.notifications import service


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"distnet-test-notify-{secrets.token_hex(4)}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def notify_settings(settings, smtp_server, redis_prefix):
    _, port = smtp_server
    return dataclasses.replace(
        settings,
        notify=dataclasses.replace(
            settings.notify, smtp_host="127.0.0.1", smtp_port=port, redis_prefix=redis_prefix
        ),
    )


async def give_contact(
    sessionmaker,
    settings,
    distributor_id: int,
    *,
    email: str | None = None,
    phone: str | None = None,
    sms_consent: bool = False,
) -> None:
    """A confirmed contact as the contact-confirmation flow leaves it (tests of that flow are in
    test_profile.py)."""
    async with session_scope(sessionmaker) as s:
        if email:
            await s.execute(
                text(
                    "UPDATE distributor SET email_enc = :e, email_hash = :h, email_verified_at = now() "
                    "WHERE id = :d"
                ),
                {
                    "e": encrypt(settings.secret_key, email),
                    "h": keyed_hash(settings.secret_key, "email", email),
                    "d": distributor_id,
                },
            )
        if phone:
            await s.execute(
                text(
                    "UPDATE distributor SET phone_enc = :e, phone_hash = :h, phone_verified_at = now() "
                    "WHERE id = :d"
                ),
                {
                    "e": encrypt(settings.secret_key, phone),
                    "h": keyed_hash(settings.secret_key, "phone", phone),
                    "d": distributor_id,
                },
            )
        if sms_consent:
            await s.execute(
                text(
                    "INSERT INTO consent (distributor_id, purpose, document_version, channel) "
                    "VALUES (:d, 'sms', 'test', 'api')"
                ),
                {"d": distributor_id},
            )


async def run_consumers(sessionmaker) -> list[dict[str, Any]]:
    """Dispatch every unpublished outbox event to the notification consumers (what the relay and
    the events.dispatch actor do), oldest first; returns the events."""
    handlers = {
        topic: [(name, fn) for name, fn in found if name.startswith("notifications.")]
        for topic, found in load_handlers().items()
    }
    async with session_scope(sessionmaker) as s:
        rows = (
            await s.execute(
                text(
                    "UPDATE outbox_event SET published_at = now() WHERE published_at IS NULL "
                    "RETURNING id, topic, payload, distributor_id, created_at, seq"
                )
            )
        ).all()
    events = [
        event_dict(r.id, r.topic, r.payload, r.distributor_id, r.created_at)
        for r in sorted(rows, key=lambda r: r.seq)
    ]
    for event in events:
        await dispatch_event(sessionmaker, event, handlers=handlers)
    return events


async def deliver_all(sessionmaker, settings) -> dict[int, str]:
    """Send every pending e-mail and SMS once (what the job and the actor do)."""
    async with session_scope(sessionmaker) as s:
        ids = await service.claim_due(s)
    outcomes = {}
    for notification_id in ids:
        async with session_scope(sessionmaker) as s:
            outcomes[notification_id] = (
                await service.deliver(s, settings=settings, notification_id=notification_id)
            ).status
    return outcomes
