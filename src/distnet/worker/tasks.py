"""The actor the scheduler enqueues: run one periodic job (worker/jobs.py) on any worker."""

from __future__ import annotations

import dramatiq

from distnet.settings import get_settings
from distnet.worker import jobs
from distnet.worker.broker import worker_sessionmaker

JOBS_QUEUE = "jobs"


# No retries: the scheduler fires the job again at its next interval, and a job is idempotent.
# One hour of time limit: settlement of a large network may run long.
@dramatiq.actor(actor_name="worker.run_job", queue_name=JOBS_QUEUE, max_retries=0, time_limit=60 * 60 * 1000)
async def run_job(name: str) -> None:
    await jobs.run_job(name, sessionmaker=worker_sessionmaker(), settings=get_settings())
