"""Metrics: request, event and job counters; outbox lag, appeal SLA and active holds read at each
scrape; counters of several server processes summed (prometheus_client multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys

from distnet.db import session_scope
from distnet.events.relay import relay_outbox
from distnet.kit.outbox import emit


def _value(body: str, name: str) -> float:
    lines = [line for line in body.splitlines() if line.startswith(name + " ") or line.startswith(name + "{")]
    assert lines, f"{name} not in /metrics"
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def test_outbox_lag_and_events_published(client, sessionmaker, stub_broker):
    async with session_scope(sessionmaker) as session:
        await emit(session, "hold.placed", {"hold_id": 1})
        await emit(session, "hold.placed", {"hold_id": 2})
    body = (await client.get("/metrics")).text
    assert _value(body, "distnet_unpublished") == 2 and _value(body, "distnet_oldest_unpublished_s") >= 0
    before = (
        _value(body, 'distnet_events_published_total{topic="hold.placed"}')
        if 'topic="hold.placed"' in body
        else 0.0
    )
    async with session_scope(sessionmaker) as session:
        assert (await relay_outbox(session, broker=stub_broker)).published == 2
    body = (await client.get("/metrics")).text
    assert _value(body, "distnet_unpublished") == 0
    assert _value(body, 'distnet_events_published_total{topic="hold.placed"}') == before + 2
    for gauge in ("distnet_open_appeals", "distnet_overdue_appeals", "distnet_active_holds"):
        assert _value(body, gauge) == 0
    assert "distnet_http_requests_total" in body


CHILD = """
import sys
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from distnet.kit.metrics import EVENTS
EVENTS.labels("order.created").inc(int(sys.argv[1]))
if sys.argv[2] == "read":
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    print(generate_latest(registry).decode())
"""


def test_several_processes_are_summed(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def child(n: int, mode: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), mode], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    child(3, "write")
    body = child(4, "read")
    assert _value(body, 'distnet_events_published_total{topic="order.created"}') == 7
