"""Settlement (invariants 4 and 8): pending commissions whose hold days have passed become
available (netting what the distributor owes first) or, when the beneficiary is under an active
violation hold, withheld. Work is split into partitions by beneficiary id range; each partition is
one transaction that moves its commissions, writes its postings and marks itself done, so:

* a run repeated moves nothing twice (everything keys on ``status = 'pending'``);
* a run killed half-way leaves finished partitions done and the others pending: the next trigger
  resumes the unfinished run (there is at most one ``running`` run);
* two runs at once share the running run's partitions (row locks on the partition, and on the
  beneficiaries' ledger accounts for the money).

Partition functions take a session and never commit; :func:`settle` owns its transactions (one per
partition) because it is the job runner behind the CLI, the HTTP trigger and the actors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from distnet.db import make_sessionmaker, session_scope
from distnet.kit.money import format_amount
from distnet.models.payouts import SettlementPartition, SettlementRun
from distnet.settlement import repository as repo
from distnet.settlement.errors import AsOfInFuture, SettlementRunNotFound
from distnet.settlement.schemas import SettlementRunView

DEFAULT_PARTITION_ROWS = 250_000
"""Aim for about this many due commissions per partition when the caller does not choose. A
partition is a beneficiary id range, and a range's commissions are spread over the whole
commission table (rows are stored in order of creation), so every partition reads and rewrites
pages all over the table and its indexes: the number of partitions multiplies that I/O. Measured
at 1M commissions (2 workers): 36 partitions 85 s, 9 partitions 66 s, 4 partitions 53 s. The
price of large partitions is lock time: a partition holds its beneficiaries' ``pending`` and
``available`` accounts until it commits, and commission accruals and reversals for them wait."""
MIN_PARTITIONS = 4
"""Runs of more than DEFAULT_PARTITION_ROWS due commissions get at least this many partitions, so
that concurrent workers have something to share."""
SMALL_RUN_PARTITION_ROWS = 12_500
SMALL_RUN_PARTITIONS = 8
"""Runs of at most DEFAULT_PARTITION_ROWS due commissions get partitions of about
SMALL_RUN_PARTITION_ROWS, at most SMALL_RUN_PARTITIONS of them. Such a run is in memory, and the
rewrite-everything cost above does not apply; smaller partitions mean smaller sorts and hashes.
Measured at 90k due commissions (2 workers, quiet machine, two runs each): 2 partitions 1.32 s,
4 partitions 1.21-1.34 s, 8 partitions 1.15-1.17 s, 16 partitions 1.40-1.43 s."""
MAX_PARTITIONS = 1024


def default_partitions(due: int) -> int:
    if due <= DEFAULT_PARTITION_ROWS:
        wanted = min(SMALL_RUN_PARTITIONS, math.ceil(due / SMALL_RUN_PARTITION_ROWS))
    else:
        wanted = max(MIN_PARTITIONS, math.ceil(due / DEFAULT_PARTITION_ROWS))
    return min(MAX_PARTITIONS, max(1, wanted))


Progress = Callable[[int, int], None]


def plan_partitions(lo: int, hi: int, partitions: int) -> list[tuple[int, int]]:
    """Split the beneficiary id range [lo, hi] into at most ``partitions`` contiguous ranges."""
    partitions = max(1, min(partitions, hi - lo + 1))
    width = math.ceil((hi - lo + 1) / partitions)
    return [(start, min(start + width - 1, hi)) for start in range(lo, hi + 1, width)]


async def start_run(
    session: AsyncSession,
    *,
    as_of: datetime | None = None,
    partitions: int | None = None,
    triggered_by: str = "system",
) -> tuple[SettlementRun, bool]:
    """Create a run with its partitions, or return the run already in progress (``True``)."""
    now = await session.scalar(repo.NOW)
    if as_of is not None and as_of > now:
        raise AsOfInFuture(
            "as_of must not be in the future: commissions become available only after their hold days",
            field="as_of",
        )
    running = await session.scalar(select(SettlementRun).where(SettlementRun.status == "running"))
    if running is not None:
        return running, True
    as_of = as_of or now
    lo, hi, due = await repo.due_bounds(session, as_of)
    if lo is None or hi is None:
        run = SettlementRun(
            as_of=as_of,
            status="done",
            partitions=0,
            partitions_done=0,
            triggered_by=triggered_by,
            finished_at=now,
        )
        session.add(run)
        await session.flush()
        return run, False
    wanted = partitions or default_partitions(due)
    ranges = plan_partitions(lo, hi, wanted)
    # ON CONFLICT on the "one running run" index: if another trigger created one meanwhile, we
    # wait for its commit and then join it
    run_id = await session.scalar(
        repo.START_RUN,
        {"as_of": as_of, "n": len(ranges), "by": triggered_by},
    )
    if run_id is None:
        running = await session.scalar(select(SettlementRun).where(SettlementRun.status == "running"))
        if running is None:  # it finished between our insert and this read: start afresh
            return await start_run(session, as_of=as_of, partitions=partitions, triggered_by=triggered_by)
        return running, True
    await session.execute(
        repo.PLAN_PARTITIONS,
        {"run": run_id, "los": [r[0] for r in ranges], "his": [r[1] for r in ranges]},
    )
    created = await session.get(SettlementRun, run_id)
    assert created is not None
    return created, False


async def _claim(session: AsyncSession, *, run_id: int, partition_no: int | None, skip_locked: bool):
    stmt = select(SettlementPartition).where(SettlementPartition.run_id == run_id)
    if partition_no is not None:
        stmt = stmt.where(SettlementPartition.partition_no == partition_no)
    else:
        stmt = (
            stmt.where(SettlementPartition.status == "pending")
            .order_by(SettlementPartition.partition_no)
            .limit(1)
        )
    part = await session.scalar(stmt.with_for_update(skip_locked=skip_locked))
    if part is None or part.status != "pending":
        return None
    return part


async def process_partition(
    session: AsyncSession, *, run_id: int, partition_no: int | None = None, skip_locked: bool = False
) -> SettlementPartition | None:
    """Settle one partition of ``run_id`` (the given one, or the next pending) in the session's
    transaction. Returns None when there was nothing left to claim. The partition row stays locked
    until commit, so no other worker processes it at the same time."""
    part = await _claim(session, run_id=run_id, partition_no=partition_no, skip_locked=skip_locked)
    if part is None:
        return None
    run = await session.get(SettlementRun, run_id)
    assert run is not None
    await session.execute(repo.PARTITION_SETTINGS)
    locked = await repo.lock_beneficiaries(session, as_of=run.as_of, lo=part.lo, hi=part.hi)
    result = repo.PartitionResult()
    if locked.ids:
        result = await repo.settle_beneficiaries(
            session,
            locked=locked,
            as_of=run.as_of,
            lo=part.lo,
            hi=part.hi,
            run_id=run_id,
            partition_no=part.partition_no,
        )
    await session.execute(
        repo.FINISH_PARTITION,
        {
            "run": run_id,
            "no": part.partition_no,
            "moved": result.moved,
            "withheld": result.withheld,
            "amount": result.amount,
            "netted": result.netted,
        },
    )
    await session.execute(
        repo.RUN_PARTITION_DONE,
        {"run": run_id, "moved": result.moved, "amount": result.amount},
    )
    await session.refresh(part)
    return part


async def settle(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    as_of: datetime | None = None,
    partitions: int | None = None,
    triggered_by: str = "system",
    on_progress: Progress | None = None,
) -> SettlementRunView:
    """Run (or resume, or join) settlement to the end, one transaction per partition."""
    async with session_scope(sessionmaker) as session:
        run, _joined = await start_run(session, as_of=as_of, partitions=partitions, triggered_by=triggered_by)
        run_id, total = run.id, run.partitions
    done = await _done_count(sessionmaker, run_id)
    if on_progress:
        on_progress(done, total)
    # first pass: take free partitions (others may be working on some); second pass: wait for
    # partitions locked by another worker, which either finishes them or dies and lets us redo them
    for skip_locked in (True, False):
        while True:
            async with session_scope(sessionmaker) as session:
                part = await process_partition(session, run_id=run_id, skip_locked=skip_locked)
            if part is None:
                break
            done += 1
            if on_progress:
                on_progress(min(done, total), total)
    async with sessionmaker() as session:
        return await run_view(session, run_id=run_id)


async def _done_count(sessionmaker: async_sessionmaker[AsyncSession], run_id: int) -> int:
    async with sessionmaker() as session:
        return await session.scalar(repo.DONE_PARTITIONS, {"r": run_id}) or 0


async def run_view(session: AsyncSession, *, run_id: int) -> SettlementRunView:
    run = await session.get(SettlementRun, run_id, populate_existing=True)
    if run is None:
        raise SettlementRunNotFound(f"no settlement run {run_id}")
    sums = (
        await session.execute(
            repo.RUN_SUMS,
            {"r": run_id},
        )
    ).one()
    return SettlementRunView(
        id=run.id,
        status=run.status,
        as_of=run.as_of,
        moved=run.moved,
        amount=format_amount(run.amount),
        withheld=int(sums.withheld),
        netted_against_debt=format_amount(int(sums.netted)),
        partitions=run.partitions,
        partitions_done=run.partitions_done,
        started_at=run.started_at,
        finished_at=run.finished_at,
        triggered_by=run.triggered_by,
    )


async def list_runs(session: AsyncSession, *, limit: int, before: int | None) -> list[int]:
    stmt = select(SettlementRun.id).order_by(SettlementRun.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(SettlementRun.id < before)
    return list(await session.scalars(stmt))


def utcnow() -> datetime:
    return datetime.now(UTC)


async def run_settlement(session: AsyncSession, *, settings: Any = None) -> SettlementRunView:
    """Periodic job entry (worker/jobs.py). Settlement commits per partition by design (a crash
    must keep the finished partitions: invariant 8), so it runs its own transactions on the
    session's engine rather than inside the runner's single unit of work; the runner's session is
    left untouched. For fan-out over several workers send the ``settlement.run`` actor instead."""
    return await settle(make_sessionmaker(cast(AsyncEngine, session.bind)), triggered_by="scheduler")
