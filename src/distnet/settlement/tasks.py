"""Dramatiq actors of settlement. The scheduler (one leader) enqueues ``settlement.run``; it plans
the run (or resumes the unfinished one) and fans out one ``settlement.run_partition`` message per
pending partition, which any worker on any machine may take. A partition message for a partition
already done is a no-op, so redelivery after a worker crash is harmless."""

from __future__ import annotations

from typing import Any

from distnet.db import session_scope
from distnet.settlement import service


def _sessionmaker():
    from distnet.worker.broker import sessionmaker  # type: ignore[attr-defined]

    return sessionmaker()


async def run(as_of: str | None = None, partitions: int | None = None, *, sessionmaker=None) -> dict[str, Any]:
    """Plan or resume a run and enqueue its pending partitions."""
    from datetime import datetime

    sm = sessionmaker or _sessionmaker()
    async with session_scope(sm) as session:
        run_, _ = await service.start_run(session, as_of=datetime.fromisoformat(as_of) if as_of else None,
                                          partitions=partitions, triggered_by="scheduler")
        run_id = run_.id
        from sqlalchemy import text

        pending = list(await session.scalars(
            text("SELECT partition_no FROM settlement_partition WHERE run_id = :r AND status = 'pending' "
                 "ORDER BY partition_no"), {"r": run_id}))
    for no in pending:
        run_partition_actor.send(run_id, no)
    return {"run_id": run_id, "enqueued": len(pending)}


async def run_partition(run_id: int, partition_no: int, *, sessionmaker=None) -> bool:
    sm = sessionmaker or _sessionmaker()
    async with session_scope(sm) as session:
        return await service.process_partition(session, run_id, partition_no) is not None


def _actor(fn, name: str):
    """Wrap ``fn`` as a dramatiq actor on the project broker when it exists; plain function otherwise."""
    try:
        import dramatiq

        from distnet.worker import broker as _broker  # noqa: F401  (sets the global broker)
    except ImportError:
        return None
    return dramatiq.actor(fn, actor_name=name, queue_name="settlement", max_retries=5)


run_actor = _actor(run, "settlement.run")
run_partition_actor = _actor(run_partition, "settlement.run_partition")
