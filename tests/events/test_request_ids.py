"""A request's id follows its events: the outbox rows a request writes carry its X-Request-ID
(through ``outbox.emit`` and through the set-based writers' ``insert_events``), the relay puts it
on the dramatiq message, and the worker binds it on its log lines while handling the event (and
on what the handler writes and enqueues in turn)."""

from __future__ import annotations

import json
import logging

from dramatiq import Message
from sqlalchemy import text

from distnet.events import registry
from distnet.events.relay import EVENTS_QUEUE, relay_outbox
from distnet.kit import outbox
from distnet.kit.logs import bind, configure_logging
from distnet.settings import LogSettings
from distnet.worker.broker import RequestIds
from tests.events.test_relay import queued
from tests.factories import auth, register
from tests.orders.helpers import order_body


async def _events(sessionmaker) -> list[tuple[str, str | None]]:
    async with sessionmaker() as s:
        return [
            tuple(r) for r in await s.execute(text("SELECT topic, request_id FROM outbox_event ORDER BY seq"))
        ]


async def test_outbox_rows_and_messages_carry_the_request_id(
    client, admin_headers, sessionmaker, stub_broker
):
    seller = await register(client, {**admin_headers, "X-Request-ID": "req-register-1"})
    resp = await client.post(
        "/api/v1/orders",
        json=order_body(seller, "100.00"),
        headers={**auth(seller), "X-Request-ID": "req-order-2"},
    )
    assert resp.status_code == 201, resp.text
    refund = await client.post(
        f"/api/v1/orders/{resp.json()['id']}/refunds",
        json={"external_id": "rf-rid", "amount": "10.00"},
        headers={**auth(seller), "X-Request-ID": "req-refund-3"},
    )
    assert refund.status_code == 201, refund.text
    events = await _events(sessionmaker)
    # emit() (registration, refund) and the single-order statement's insert_events (order.created)
    assert ("distributor.registered", "req-register-1") in events
    assert ("order.created", "req-order-2") in events
    assert ("order.refunded", "req-refund-3") in events
    async with sessionmaker() as s:
        await outbox.emit(s, "test.outside", {})  # no request: no id
        await s.commit()
        await relay_outbox(s, broker=stub_broker)
        await s.commit()
    options = {m.args[0]["topic"]: m.options for m in queued(stub_broker)}
    assert options["order.created"] == {"request_id": "req-order-2"}
    assert options["distributor.registered"] == {"request_id": "req-register-1"}
    assert options["test.outside"] == {}


async def test_the_worker_logs_and_writes_with_the_events_request_id(
    sessionmaker, stub_broker, stub_worker, capsys
):
    seen: list[str | None] = []

    async def handler(session, event):
        logging.getLogger("distnet.test").warning("handled %s", event["topic"])
        await outbox.emit(session, "test.rid_child", {"parent": event["id"]})
        seen.append(json.dumps(event["payload"]))

    registry.on("test.rid", consumer="test.rid")(handler)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(settings=LogSettings(format="json"))
        with bind(request_id="req-job-9"):  # as the request middleware binds it
            async with sessionmaker() as s:
                await outbox.emit(s, "test.rid", {"n": 1})
                await s.commit()
        async with sessionmaker() as s:
            await relay_outbox(s, broker=stub_broker)
            await s.commit()
        stub_broker.join(EVENTS_QUEUE)
        stub_worker.join()
        message = Message(queue_name=EVENTS_QUEUE, actor_name="none", args=(), kwargs={}, options={})
        with bind(request_id="req-enqueue-5"):  # a job enqueued meanwhile carries the id too
            RequestIds().before_enqueue(stub_broker, message, 0)
    finally:
        registry.HANDLERS.pop("test.rid", None)
        root.handlers[:], level = saved
        root.setLevel(level)
    assert seen == ['{"n": 1}']
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    handled = [x for x in lines if x["event"] == "handled test.rid"]
    assert [x.get("request_id") for x in handled] == ["req-job-9"]
    assert ("test.rid_child", "req-job-9") in await _events(sessionmaker)
    assert message.options["request_id"] == "req-enqueue-5"
