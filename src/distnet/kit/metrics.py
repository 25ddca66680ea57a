"""Prometheus metrics: HTTP requests by route template (not raw path, to bound cardinality), events
published by topic (orders, refunds, holds placed and lifted, payouts...), periodic job durations
(settlement among them), and, read at each scrape, the outbox lag, the appeal SLA and active holds.

Under ``distnet serve --processes N`` each process keeps its own counters; ``serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at one directory for all of them and ``/metrics`` sums them
(prometheus_client's multiprocess mode), so any process answers for all."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import repository

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable

REQUESTS = Counter("distnet_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "distnet_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS = Counter(
    "distnet_events_published_total",
    "Domain events published by the outbox relay (order.created, hold.placed, hold.lifted, ...)",
    ["topic"],
)
JOB_SECONDS = Histogram(
    "distnet_job_seconds",
    "Duration of a periodic job run (settlement, risk scan, ...)",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
)


def record_request(scope: MutableMapping[str, Any], status: int, started: float) -> None:
    """Count a finished request and its latency by route template (kit/logs.request_id_middleware
    calls it as the request ends)."""
    label = scope.get("path_template") or "unmatched"
    method = scope.get("method", "WS")
    REQUESTS.labels(method, label, str(status)).inc()
    LATENCY.labels(method, label).observe(time.perf_counter() - started)


class _Snapshot(Collector):
    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, help_text in (
            ("unpublished", "Outbox events not yet published (lag in events)"),
            ("oldest_unpublished_s", "Age of the oldest unpublished outbox event, seconds (lag in time)"),
            ("open_appeals", "Appeals not yet decided"),
            ("overdue_appeals", "Open appeals past their SLA due time (clock not paused)"),
            ("active_holds", "Active holds (suspended cards)"),
        ):
            yield GaugeMetricFamily(f"distnet_{name}", help_text, value=float(self.values[name]))


async def exposition(session: AsyncSession) -> bytes:
    """The /metrics body: every process's counters (multiprocess mode) or this one's, then the
    state gauges read now."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counters = generate_latest(registry)
    else:
        counters = generate_latest(REGISTRY)
    row = (await session.execute(repository.METRICS_STATE)).mappings().one()
    state = CollectorRegistry()
    state.register(_Snapshot(dict(row)))
    return counters + generate_latest(state)
