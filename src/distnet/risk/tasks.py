"""Dramatiq actors of the risk domain. The periodic jobs (worker/jobs.py) call the service functions
directly; these actors let other code enqueue the same work (``risk.scan`` from an operator,
``risk.check_order`` to re-check one order)."""

from __future__ import annotations

from typing import Any

import dramatiq

import distnet.worker.broker  # noqa: F401  (sets the broker before actors are declared)
from distnet.db import session_scope
from distnet.kit.auth import SYSTEM
from distnet.risk import checks, maintenance, scan
from distnet.risk.holds import forfeit_due
from distnet.worker.broker import worker_sessionmaker


@dramatiq.actor(actor_name="risk.scan", queue_name="risk", max_retries=3, time_limit=30 * 60 * 1000)
async def run_scan(only: list[str] | None = None) -> dict[str, Any]:
    async with session_scope(worker_sessionmaker()) as session:
        result = await scan.run_scan(session, SYSTEM, only=only)
    return {"id": result.id, "cases_opened": result.cases_opened, "holds_placed": result.holds_placed}


@dramatiq.actor(actor_name="risk.check_order", queue_name="risk", max_retries=5)
async def check_order(order_id: int) -> list[int]:
    async with session_scope(worker_sessionmaker()) as session:
        return await checks.check_order(session, order_id)


@dramatiq.actor(actor_name="risk.tick_maintenance", queue_name="risk", max_retries=5)
async def tick_maintenance() -> dict[str, Any]:
    async with session_scope(worker_sessionmaker()) as session:
        return await maintenance.tick(session)


@dramatiq.actor(actor_name="risk.forfeit_due", queue_name="risk", max_retries=5)
async def forfeit() -> int:
    async with session_scope(worker_sessionmaker()) as session:
        return await forfeit_due(session)
