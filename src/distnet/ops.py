"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.http import PUBLIC
from distnet.kit.metrics import exposition


class OpsController(Controller):
    include_in_schema = True
    tags = ["operations"]

    @get("/health", opt=PUBLIC)
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", opt=PUBLIC)
    async def ready(self, state: State) -> Response[dict[str, Any]]:
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
        return Response({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @get("/metrics", opt=PUBLIC, media_type=MediaType.TEXT)
    async def metrics(self, session: AsyncSession) -> Response[bytes]:
        return Response(await exposition(session), media_type=CONTENT_TYPE_LATEST)
