"""Prometheus request metrics, labelled by route template (not raw path) to bound cardinality."""

from __future__ import annotations

import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Histogram

REQUESTS = Counter("distnet_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("distnet_http_request_seconds", "HTTP request latency", ["method", "route"],
                    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = {"code": 500}
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            label = scope.get("path_template") or "unmatched"
            REQUESTS.labels(scope.get("method", "WS"), label, str(status["code"])).inc()
            LATENCY.labels(scope.get("method", "WS"), label).observe(time.perf_counter() - start)

    return middleware
