"""events.dispatch: every consumer runs once per event, in its own transaction; duplicates are
dropped by processed_event; a failing consumer is retried without re-running the others."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from distnet.events import registry
from distnet.events.dispatch import DispatchFailed, dispatch_event
from distnet.events.relay import event_message, relay_outbox
from distnet.kit.outbox import emit


async def processed(sessionmaker) -> set[tuple[str, str]]:
    async with sessionmaker() as s:
        rows = (await s.execute(text("SELECT consumer, event_id FROM processed_event"))).all()
    return {(r.consumer, r.event_id) for r in rows if r.consumer.startswith("test.")}


async def test_worker_runs_each_consumer_once_and_drops_a_redelivery(
    sessionmaker, stub_broker, stub_worker, handler_log
):
    async with sessionmaker() as s:
        ids = [str(await emit(s, "test.ping", {"n": n})) for n in range(3)]
        await s.commit()
    async with sessionmaker() as s:
        await relay_outbox(s, broker=stub_broker)
        await s.commit()
    stub_broker.join("events")
    assert sorted((c, e["id"]) for c, e in handler_log) == sorted(
        (c, i) for i in ids for c in ("test.a", "test.b")
    )
    assert await processed(sessionmaker) == {(c, i) for i in ids for c in ("test.a", "test.b")}

    # at-least-once: the broker hands the same message out again
    stub_broker.enqueue(event_message(handler_log[0][1]))
    stub_broker.join("events")
    assert len(handler_log) == 6


async def test_failing_consumer_rolls_back_alone_and_is_retried(sessionmaker, handler_log):
    attempts = []

    async def flaky(session, event):
        attempts.append(event["id"])
        await session.execute(
            text("INSERT INTO processed_event (consumer, event_id) VALUES ('test.side', :id)"),
            {"id": event["id"]},
        )
        if len(attempts) == 1:
            raise RuntimeError("database hiccup")

    registry.on("test.ping", consumer="test.flaky")(flaky)
    event = {
        "id": "00000000-0000-0000-0000-000000000001",
        "topic": "test.ping",
        "payload": {},
        "distributor_id": None,
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    with pytest.raises(DispatchFailed, match="test.flaky"):
        await dispatch_event(sessionmaker, event)
    # the failed consumer's writes (its side effect and its processed row) rolled back
    assert await processed(sessionmaker) == {("test.a", event["id"]), ("test.b", event["id"])}

    result = await dispatch_event(sessionmaker, event)
    assert result.handled == ["test.flaky"]
    assert sorted(c for c in result.duplicates if c.startswith("test.")) == ["test.a", "test.b"]
    assert len(handler_log) == 2 and len(attempts) == 2
    assert ("test.side", event["id"]) in await processed(sessionmaker)


async def test_family_and_wildcard_consumers():
    from distnet.events.dispatch import consumers_for

    def h(name):
        async def handler(session, event):
            return None

        return (name, handler)

    handlers = {
        "hold.placed": [h("exact")],
        "hold.*": [h("family")],
        "*": [h("all")],
        "order.*": [h("other")],
    }
    assert [c for c, _ in consumers_for("hold.placed", handlers)] == ["exact", "family", "all"]
    assert [c for c, _ in consumers_for("card.frozen", handlers)] == ["all"]
