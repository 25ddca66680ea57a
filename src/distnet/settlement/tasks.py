"""Dramatiq actors of settlement. The scheduler (one leader) enqueues ``settlement.run``: it plans
the run (or resumes the unfinished one) and fans out one ``settlement.run_partition`` message per
pending partition, which any worker on any machine may take. A message for a partition that is
already done is a no-op, so redelivery after a worker crash is harmless."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dramatiq

from distnet.db import session_scope
from distnet.settlement import repository as repo
from distnet.settlement import service
from distnet.worker.broker import worker_sessionmaker


async def plan_and_fan_out(
    session, *, as_of: datetime | None = None, partitions: int | None = None, triggered_by: str = "scheduler"
) -> tuple[int, list[int]]:
    run, _ = await service.start_run(session, as_of=as_of, partitions=partitions, triggered_by=triggered_by)
    pending = list(await session.scalars(repo.PENDING_PARTITIONS, {"r": run.id}))
    return run.id, pending


@dramatiq.actor(actor_name="settlement.run", queue_name="settlement", max_retries=3)
async def run(as_of: str | None = None, partitions: int | None = None) -> dict[str, Any]:
    async with session_scope(worker_sessionmaker()) as session:
        run_id, pending = await plan_and_fan_out(
            session, as_of=datetime.fromisoformat(as_of) if as_of else None, partitions=partitions
        )
    # enqueued after the plan committed: a worker that takes a message finds its partition row
    for no in pending:
        run_partition.send(run_id, no)
    return {"run_id": run_id, "enqueued": len(pending)}


@dramatiq.actor(actor_name="settlement.run_partition", queue_name="settlement", max_retries=10)
async def run_partition(run_id: int, partition_no: int) -> bool:
    """Settle one partition; False when it was already done (a redelivered message)."""
    async with session_scope(worker_sessionmaker()) as session:
        return await service.process_partition(session, run_id=run_id, partition_no=partition_no) is not None
