"""Liveness, readiness and metrics."""

from __future__ import annotations

import msgspec
from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.http import PUBLIC
from distnet.kit.metrics import exposition


class Health(msgspec.Struct):
    status: str


class ReadinessChecks(msgspec.Struct):
    """``ok`` or ``error: <exception name>``."""

    database: str
    redis: str


class Readiness(msgspec.Struct):
    ready: bool
    checks: ReadinessChecks


class OpsController(Controller):
    include_in_schema = True
    tags = ["operations"]

    @get("/health", opt=PUBLIC)
    async def health(self) -> Health:
        return Health(status="ok")

    @get(
        "/ready",
        opt=PUBLIC,
        responses={503: ResponseSpec(Readiness, description="Not ready: a check failed")},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        checks = {}
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, it does not raise
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return Response(Readiness(ok, ReadinessChecks(**checks)), status_code=200 if ok else 503)

    @get("/metrics", opt=PUBLIC, media_type=MediaType.TEXT)
    async def metrics(self, session: AsyncSession) -> Response[bytes]:
        return Response(await exposition(session), media_type=CONTENT_TYPE_LATEST)
