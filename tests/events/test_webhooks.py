"""Webhooks: admin routes (secret shown once), HMAC signature a receiver can verify, retries with
backoff until 2xx, giving up on a 4xx, fan-out only to subscribed endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from distnet.events import webhooks
from distnet.events.relay import relay_outbox
from distnet.kit.outbox import emit
from tests.events.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(webhooks, "MIN_BACKOFF_MS", 100)
    monkeypatch.setattr(webhooks, "MAX_BACKOFF_MS", 400)


def test_signature_round_trip_and_tampering():
    body = b'{"id":"e1"}'
    header = webhooks.sign("s3cret", body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert webhooks.verify_signature("s3cret", header, body, now=1_700_000_100)
    assert not webhooks.verify_signature("other", header, body, now=1_700_000_100)
    assert not webhooks.verify_signature("s3cret", header, body + b" ", now=1_700_000_100)
    assert not webhooks.verify_signature("s3cret", header, body, now=1_700_000_000 + 301)  # replayed later
    assert not webhooks.verify_signature("s3cret", "garbage", body)


@pytest.mark.parametrize(
    ("subscribed", "topic", "matches"),
    [
        (["hold.placed"], "hold.placed", True),
        (["hold.placed"], "hold.lifted", False),
        (["hold.*"], "hold.lifted", True),
        (["*"], "order.created", True),
        (["order.created"], "order.created.extra", False),
    ],
)
def test_topic_matching(subscribed, topic, matches):
    assert webhooks.topic_matches(subscribed, topic) is matches


async def test_admin_creates_and_lists_endpoints_secret_shown_once(client, admin_headers, make_key):
    resp = await client.post(
        "/api/v1/webhooks", json={"url": "https://example.com/h", "topics": ["hold.*"]}, headers=admin_headers
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["secret"].startswith("whsec_") and created["topics"] == ["hold.*"]
    listed = (await client.get("/api/v1/webhooks", headers=admin_headers)).json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]

    for bad in (
        {"url": "ftp://x.example/h", "topics": ["*"]},
        {"url": "https://x.example", "topics": []},
        {"url": "https://x.example", "topics": ["Not A Topic"]},
    ):
        resp = await client.post("/api/v1/webhooks", json=bad, headers=admin_headers)
        assert resp.status_code in (400, 422), (bad, resp.text)
    finance = {"Authorization": f"Bearer {await make_key('finance')}"}
    assert (await client.get("/api/v1/webhooks", headers=finance)).status_code == 403

    resp = await client.post(f"/api/v1/webhooks/{created['id']}/deactivation", headers=admin_headers)
    assert resp.status_code == 200 and resp.json()["active"] is False
    resp = await client.post("/api/v1/webhooks/999999/deactivation", headers=admin_headers)
    assert resp.status_code == 404


async def add_endpoint(
    sessionmaker, url: str, topics: list[str], secret: str = "whsec_test_secret_123"
) -> int:
    async with sessionmaker() as s:
        endpoint_id = (
            await s.execute(
                text(
                    "INSERT INTO webhook_endpoint (url, secret, topics) VALUES (:u, :s, CAST(:t AS jsonb)) RETURNING id"
                ),
                {"u": url, "s": secret, "t": json.dumps(topics)},
            )
        ).scalar_one()
        await s.commit()
    return endpoint_id


async def emit_and_relay(sessionmaker, broker, topic: str, payload: dict) -> str:
    async with sessionmaker() as s:
        event_id = str(await emit(s, topic, payload, distributor_id=None))
        await s.commit()
    async with sessionmaker() as s:
        assert (await relay_outbox(s, broker=broker)).published == 1
        await s.commit()
    return event_id


async def wait_for(check, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_signed_delivery_verifies_at_the_receiver(sessionmaker, stub_broker, stub_worker, receiver):
    await add_endpoint(sessionmaker, receiver.url, ["hold.*"])
    other = Receiver()  # subscribed to another topic: gets nothing
    try:
        await add_endpoint(sessionmaker, other.url, ["payout.paid"])
        event_id = await emit_and_relay(sessionmaker, stub_broker, "hold.placed", {"hold_id": 7})
        stub_broker.join("events")
        stub_broker.join("webhooks")
        assert len(receiver.requests) == 1 and other.requests == []
    finally:
        other.close()
    got = receiver.requests[0]
    assert got.headers["X-Distnet-Event-Id"] == event_id
    assert got.headers["X-Distnet-Topic"] == "hold.placed"
    assert webhooks.verify_signature("whsec_test_secret_123", got.headers["X-Distnet-Signature"], got.body)
    body = json.loads(got.body)
    assert body["id"] == event_id and body["topic"] == "hold.placed" and body["data"] == {"hold_id": 7}


async def test_receiver_failing_twice_gets_the_event_once_after_retries(
    sessionmaker, stub_broker, stub_worker, fast_retries, caplog
):
    receiver = Receiver(statuses=[503, 500])
    caplog.set_level("INFO")
    try:
        await add_endpoint(sessionmaker, receiver.url, ["*"])
        event_id = await emit_and_relay(sessionmaker, stub_broker, "order.created", {"order_id": 1})
        stub_broker.join("events")
        await wait_for(lambda: len(receiver.requests) >= 3)
        stub_broker.join("webhooks")
        await asyncio.sleep(0.3)  # a further (wrong) retry would land here
        assert [r.status for r in receiver.requests] == [503, 500, 200]
        assert len(receiver.delivered) == 1
        assert {r.headers["X-Distnet-Event-Id"] for r in receiver.requests} == {event_id}
        assert len({r.body for r in receiver.requests}) == 1  # the same bytes every attempt
        # each failed attempt is one line naming the endpoint and the status, without a traceback
        failures = [r for r in caplog.records if "webhook" in r.getMessage() and r.levelname != "DEBUG"]
        assert [(r.levelname, "attempt" in r.getMessage()) for r in failures] == [("WARNING", True)] * 2
        assert not [r for r in caplog.records if r.exc_info], [
            r.getMessage() for r in caplog.records if r.exc_info
        ]
    finally:
        receiver.close()


async def test_a_4xx_is_not_retried_but_429_is(sessionmaker, stub_broker, stub_worker, fast_retries):
    rejecting, throttling = Receiver(statuses=[410]), Receiver(statuses=[429])
    try:
        await add_endpoint(sessionmaker, rejecting.url, ["*"])
        await add_endpoint(sessionmaker, throttling.url, ["*"])
        await emit_and_relay(sessionmaker, stub_broker, "order.created", {"order_id": 2})
        stub_broker.join("events")
        await wait_for(lambda: len(throttling.requests) >= 2)
        stub_broker.join("webhooks")
        await asyncio.sleep(0.3)
        assert [r.status for r in rejecting.requests] == [410]
        assert [r.status for r in throttling.requests] == [429, 200]
    finally:
        rejecting.close()
        throttling.close()


async def test_redelivered_event_is_not_fanned_out_twice(sessionmaker, stub_broker, stub_worker, receiver):
    await add_endpoint(sessionmaker, receiver.url, ["*"])
    await emit_and_relay(sessionmaker, stub_broker, "card.frozen", {"card_id": 3})
    stub_broker.join("events")
    # the relay's commit "failed": the same event goes out again
    async with sessionmaker() as s:
        await s.execute(text("UPDATE outbox_event SET published_at = NULL"))
        await s.commit()
    async with sessionmaker() as s:
        assert (await relay_outbox(s, broker=stub_broker)).published == 1
        await s.commit()
    stub_broker.join("events")
    stub_broker.join("webhooks")
    assert len(receiver.requests) == 1
