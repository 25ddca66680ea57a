"""Outbox relay (invariant 9): nothing is lost or marked while the broker is down; everything goes
out after recovery; several relays never publish one event twice."""

from __future__ import annotations

import asyncio

import dramatiq
from dramatiq import Message
from sqlalchemy import text

from distnet.events.relay import DISPATCH_ACTOR, EVENTS_QUEUE, relay_outbox
from distnet.kit.outbox import emit
from distnet.worker.broker import redis_broker
from tests.worker.support import free_port


async def emit_events(sessionmaker, n: int, topic: str = "test.ping", start: int = 0) -> list[str]:
    async with sessionmaker() as s:
        ids = [str(await emit(s, topic, {"n": start + i})) for i in range(n)]
        await s.commit()
    return ids


async def outbox_state(sessionmaker) -> dict[str, tuple]:
    async with sessionmaker() as s:
        rows = (
            await s.execute(text("SELECT id, published_at, attempts, last_error FROM outbox_event"))
        ).all()
    return {str(r.id): (r.published_at, r.attempts, r.last_error) for r in rows}


def queued(broker: dramatiq.Broker, queue: str = EVENTS_QUEUE) -> list[Message]:
    q = broker.queues.get(queue)
    return [] if q is None else [Message.decode(raw) for raw in list(q.queue)]


async def relay(sessionmaker, broker, limit: int = 100):
    async with sessionmaker() as s:
        result = await relay_outbox(s, limit=limit, broker=broker)
        await s.commit()
    return result


async def test_relay_publishes_in_seq_order_with_event_id_as_message_id(sessionmaker, stub_broker):
    ids = await emit_events(sessionmaker, 5)
    result = await relay(sessionmaker, stub_broker)
    assert (result.published, result.waiting, result.error) == (5, 0, None)
    messages = queued(stub_broker)
    assert [m.message_id for m in messages] == ids
    assert {m.actor_name for m in messages} == {DISPATCH_ACTOR}
    assert [m.args[0]["payload"]["n"] for m in messages] == [0, 1, 2, 3, 4]
    assert messages[0].args[0]["topic"] == "test.ping"
    state = await outbox_state(sessionmaker)
    assert all(published is not None and attempts == 1 for published, attempts, _ in state.values())

    again = await relay(sessionmaker, stub_broker)
    assert again.published == 0
    assert len(queued(stub_broker)) == 5


async def test_event_of_a_rolled_back_change_is_never_sent(sessionmaker, stub_broker):
    async with sessionmaker() as s:
        await emit(s, "test.ping", {"n": 1})
        await s.rollback()
    assert (await relay(sessionmaker, stub_broker)).published == 0
    assert queued(stub_broker) == []


async def test_broker_on_closed_port_marks_nothing_and_records_the_error(sessionmaker):
    ids = await emit_events(sessionmaker, 3)
    down = redis_broker(f"redis://127.0.0.1:{free_port()}/0")
    result = await relay(sessionmaker, down)
    assert (result.published, result.waiting) == (0, 3)
    assert "ConnectionError" in result.error
    state = await outbox_state(sessionmaker)
    assert all(state[i][0] is None for i in ids)
    # only the first refused event counts an attempt: the others were never tried
    assert [state[i][1] for i in ids] == [1, 0, 0]
    assert "ConnectionError" in state[ids[0]][2]


async def test_redis_down_then_up_everything_delivered_once(sessionmaker, redis_server, handler_log):
    from distnet.events.dispatch import dispatch_event

    broker = redis_broker(redis_server.url, namespace="relaytest")
    before = await emit_events(sessionmaker, 4)
    assert (await relay(sessionmaker, broker)).published == 4

    redis_server.kill()  # Redis dies; business transactions keep emitting
    during = await emit_events(sessionmaker, 6, start=4)
    for _ in range(2):
        result = await relay(sessionmaker, broker)
        assert (result.published, result.waiting) == (0, 6)
    state = await outbox_state(sessionmaker)
    assert all(state[i][0] is None for i in during)

    redis_server.start()  # a fresh, empty Redis on the same port: what was sent before is gone
    # (the 4 sent before were already consumed in real life; here we only check the 6 that waited)
    result = await relay(sessionmaker, broker)
    assert (result.published, result.waiting, result.error) == (6, 0, None)
    state = await outbox_state(sessionmaker)
    assert all(state[i][0] is not None for i in before + during)

    # consume what Redis holds and dispatch it: each waiting event arrives, in order
    broker.declare_queue(EVENTS_QUEUE)
    consumer = broker.consume(EVENTS_QUEUE, prefetch=10, timeout=200)
    received = []
    for message in consumer:
        if message is None:
            break
        received.append(message)
        consumer.ack(message)
    consumer.close()
    assert [m.message_id for m in received] == during
    for message in received:
        await dispatch_event(sessionmaker, message.args[0])
    # a duplicate delivery (e.g. the relay's commit failed after the broker accepted) is dropped
    await dispatch_event(sessionmaker, received[0].args[0])
    assert sorted((c, e["id"]) for c, e in handler_log) == sorted(
        (c, i) for i in during for c in ("test.a", "test.b")
    )
    broker.client.flushdb()
    broker.close()


async def test_concurrent_relays_skip_each_others_rows(sessionmaker, stub_broker):
    ids = await emit_events(sessionmaker, 6)
    async with sessionmaker() as first, sessionmaker() as second:
        r1 = await relay_outbox(first, limit=4, broker=stub_broker)  # holds its 4 rows locked
        r2 = await asyncio.wait_for(relay_outbox(second, limit=100, broker=stub_broker), timeout=5)
        await first.commit()
        await second.commit()
    assert (r1.published, r2.published) == (4, 2)
    assert sorted(m.message_id for m in queued(stub_broker)) == sorted(ids)
    assert (await relay(sessionmaker, stub_broker)).published == 0
