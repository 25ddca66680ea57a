"""A dramatiq worker in this process: every actor module, then the worker on our broker. Used by
``distnet worker``, the in-process worker of ``distnet serve`` (worker/inprocess.py) and the demo."""

from __future__ import annotations

import dramatiq

import distnet.events.tasks
import distnet.notifications.tasks
import distnet.risk.tasks
import distnet.settlement.tasks
import distnet.worker.tasks
from distnet.worker.broker import broker

# Every module that declares actors (imported above, so their actors are declared on the broker).
TASK_MODULES = tuple(
    m.__name__
    for m in (
        distnet.worker.tasks,
        distnet.events.tasks,
        distnet.settlement.tasks,
        distnet.risk.tasks,
        distnet.notifications.tasks,
    )
)


def start_worker(threads: int, queues: list[str] | None = None) -> dramatiq.Worker:
    """Start a dramatiq worker on our broker in this process (threads); the caller stops it."""
    worker = dramatiq.Worker(broker, worker_threads=threads, queues=set(queues) if queues else None)
    worker.start()
    return worker
