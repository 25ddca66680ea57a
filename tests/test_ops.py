"""Operations: liveness, readiness (database and Redis), Prometheus metrics, OpenAPI."""

from __future__ import annotations

from distnet.app import create_app
from tests.factories import register


async def test_health_and_ready(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok", "redis": "ok"}}


async def test_ready_reports_a_dead_redis(settings, database_url):
    from litestar.testing import AsyncTestClient

    app = create_app(settings, database_url=database_url, redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(app=app) as c:
        resp = await c.get("/ready")
    assert resp.status_code == 503
    body = resp.json()
    assert body["ready"] is False and body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")


async def test_metrics_count_requests_by_route(client, admin_headers):
    await register(client, admin_headers, name="Root")
    text = (await client.get("/metrics")).text
    assert "distnet_http_requests_total" in text
    assert 'route="/api/v1/distributors"' in text


async def test_openapi_and_interactive_page(client):
    schema = (await client.get("/schema/openapi.json")).json()
    assert "/api/v1/distributors" in schema["paths"]
    page = await client.get("/schema/swagger")
    assert page.status_code == 200 and "swagger" in page.text.lower()


async def test_unknown_route_and_method_are_problems(client):
    resp = await client.get("/api/v1/nope")
    assert resp.status_code == 404 and resp.headers["content-type"].startswith("application/problem+json")
    resp = await client.delete("/health")
    assert resp.status_code == 405 and resp.json()["code"] == "method-not-allowed"
