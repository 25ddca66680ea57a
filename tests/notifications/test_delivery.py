"""Sending: the job queues pending deliveries, the ``notifications.send`` actor sends them through
the provider and records the outcome; failures are retried and recorded, then given up."""

from __future__ import annotations

import socket

import dramatiq
import pytest
from sqlalchemy import text

import distnet.notifications.tasks as tasks
from distnet.db import session_scope
from distnet.kit import outbox
from distnet.notifications import service
from distnet.settings import get_settings
from tests.factories import register
from tests.notifications.conftest import deliver_all, give_contact, run_consumers
from tests.worker.support import stub_broker, stub_worker  # noqa: F401


async def _paid_event(sessionmaker, distributor_id: int) -> None:
    async with session_scope(sessionmaker) as s:
        await outbox.emit(
            s,
            "payout.paid",
            {"amount": 2500, "currency": "CNY", "reference": "R9", "distributor_id": distributor_id},
            distributor_id=distributor_id,
        )
    await run_consumers(sessionmaker)


async def test_job_and_actor_send_the_email(
    client,
    admin_headers,
    sessionmaker,
    notify_settings,
    smtp_server,
    stub_worker,  # noqa: F811
    monkeypatch,
    redis_url,
    database_url,
    tmp_path,
):
    mailbox, port = smtp_server
    for key, value in {
        "DISTNET_SMTP_HOST": "127.0.0.1",
        "DISTNET_SMTP_PORT": str(port),
        "DISTNET_SECRET_KEY": "test-secret-key",
        "DISTNET_REDIS_URL": redis_url,
        "DISTNET_DATABASE_URL": database_url,
        "DISTNET_DATA_DIR": str(tmp_path),
        "DISTNET_REDIS_PREFIX": notify_settings.notify.redis_prefix,
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        d = await register(client, admin_headers, name="Ann")
        await give_contact(sessionmaker, notify_settings, d["id"], email="ann@example.com")
        await _paid_event(sessionmaker, d["id"])
        async with session_scope(sessionmaker) as s:
            assert await tasks.queue_due(s, notify_settings) == 1
        async with session_scope(sessionmaker) as s:  # queued once
            assert await tasks.queue_due(s, notify_settings) == 0
        stub_worker.broker.join(tasks.QUEUE, timeout=30_000)
        stub_worker.join()
        [mail] = mailbox.to("ann@example.com")
        assert "25.00" in mail["Subject"]
        async with session_scope(sessionmaker) as s:
            row = (
                await s.execute(
                    text(
                        "SELECT status, attempts, sent_at IS NOT NULL FROM notification "
                        "WHERE channel = 'email'"
                    )
                )
            ).one()
        assert tuple(row) == ("sent", 1, True)
    finally:
        get_settings.cache_clear()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_failures_are_retried_recorded_and_given_up(
    client, admin_headers, sessionmaker, notify_settings
):
    import dataclasses

    down = dataclasses.replace(
        notify_settings, notify=dataclasses.replace(notify_settings.notify, smtp_port=_closed_port())
    )
    d = await register(client, admin_headers, name="Bo")
    await give_contact(sessionmaker, down, d["id"], email="bo@example.com")
    await _paid_event(sessionmaker, d["id"])
    async with session_scope(sessionmaker) as s:
        [notification_id] = await service.claim_due(s)
    outcomes = []
    for _ in range(service.MAX_ATTEMPTS + 1):
        async with session_scope(sessionmaker) as s:
            outcomes.append((await service.deliver(s, settings=down, notification_id=notification_id)).status)
    assert outcomes == ["retry"] * (service.MAX_ATTEMPTS - 1) + ["failed", "done"]
    async with session_scope(sessionmaker) as s:
        row = (
            await s.execute(
                text("SELECT status, attempts, last_error FROM notification WHERE id = :i"),
                {"i": notification_id},
            )
        ).one()
    assert row[0] == "failed" and row[1] == service.MAX_ATTEMPTS and "SMTP unavailable" in row[2]


async def test_the_actor_raises_for_a_retry(
    client, admin_headers, sessionmaker, notify_settings, monkeypatch
):
    async def retry(session, **kw):
        return service.Delivery("retry", "SMTP 451 try later")

    monkeypatch.setattr(service, "deliver", retry)
    monkeypatch.setattr(tasks, "worker_sessionmaker", lambda: sessionmaker)
    with pytest.raises(tasks.DeliveryRetry):
        await tasks.send_one(1)


async def test_provider_rate_limit_delays_without_counting_an_attempt(
    client, admin_headers, sessionmaker, notify_settings, smtp_server, redis_url
):
    import dataclasses

    import redis.asyncio as aioredis

    from distnet.kit.ratelimit import RateLimiter

    mailbox, _ = smtp_server
    slow = dataclasses.replace(
        notify_settings, notify=dataclasses.replace(notify_settings.notify, email_per_minute=1)
    )
    for name in ("A", "B"):
        d = await register(client, admin_headers, name=name)
        await give_contact(sessionmaker, slow, d["id"], email=f"{name}@example.com")
        await _paid_event(sessionmaker, d["id"])
    redis = aioredis.from_url(redis_url)
    limiter = RateLimiter(redis, prefix=slow.notify.redis_prefix, limits={})
    try:
        async with session_scope(sessionmaker) as s:
            ids = await service.claim_due(s)
        results = []
        for notification_id in ids:
            async with session_scope(sessionmaker) as s:
                results.append(
                    await service.deliver(s, settings=slow, notification_id=notification_id, limiter=limiter)
                )
    finally:
        await redis.aclose()
    assert [r.status for r in results] == ["sent", "wait"] and 0 < results[1].wait_s <= 60
    async with session_scope(sessionmaker) as s:
        assert (await s.scalar(text("SELECT attempts FROM notification WHERE id = :i"), {"i": ids[1]})) == 0
    assert len(mailbox.messages) == 1
    assert (await deliver_all(sessionmaker, notify_settings)) == {}  # still queued for the actor's retry


_ = dramatiq
