"""``distnet worker``, ``distnet scheduler``, ``distnet demo``."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from typing import Annotated

import typer

# Every module that declares actors. A domain that has not landed yet is skipped.
TASK_MODULES = (
    "distnet.worker.tasks",
    "distnet.events.tasks",
    "distnet.orders.tasks",
    "distnet.settlement.tasks",
    "distnet.payouts.tasks",
    "distnet.risk.tasks",
    "distnet.ranks.tasks",
    "distnet.notifications.tasks",
)

logger = logging.getLogger(__name__)


def import_task_modules() -> list[str]:
    """Import every actor module that exists; return the names imported."""
    loaded = []
    for name in TASK_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            logger.info("no actors module %s (yet)", name)
            continue
        loaded.append(name)
    return loaded


def start_worker(threads: int, queues: list[str] | None = None):
    """Start a dramatiq worker on our broker in this process (threads); the caller stops it."""
    import dramatiq

    import_task_modules()
    from distnet.worker.broker import broker

    worker = dramatiq.Worker(broker, worker_threads=threads, queues=set(queues) if queues else None)
    worker.start()
    return worker


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        threads: Annotated[int, typer.Option("--threads", "-t", min=1, help="worker threads")] = 8,
        queue: Annotated[list[str] | None, typer.Option("--queue", "-Q", help="only these queues")] = None,
    ) -> None:
        """Run a dramatiq worker for every actor module (events, jobs, settlement, payouts, risk)."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        running = start_worker(threads, queue)
        from distnet.worker.broker import broker

        typer.echo(f"worker: {threads} threads on {type(broker).__name__}, queues: "
                   f"{', '.join(sorted(queue or broker.get_declared_queues()))}")
        stop.wait()
        typer.echo("worker: stopping (finishing messages in progress)")
        running.stop(timeout=30_000)

    @app.command()
    def scheduler(
        inline: Annotated[bool, typer.Option(help="run jobs in this process instead of enqueueing them")] = False,
        retry_interval: Annotated[float, typer.Option(help="seconds between leader-lock attempts")] = 5.0,
        heartbeat: Annotated[float, typer.Option(help="seconds between leader-connection checks")] = 5.0,
    ) -> None:
        """Fire the periodic jobs while this process holds the leader lock (run several for failover)."""
        import asyncio

        from distnet.settings import get_settings
        from distnet.worker.scheduler import LeaderScheduler, install_signal_handlers

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per run is noise at 2 s

        async def main() -> None:
            leader = LeaderScheduler(get_settings(), inline=inline, retry_interval=retry_interval,
                                     heartbeat=heartbeat)
            install_signal_handlers(leader.stop)
            await leader.run()

        asyncio.run(main())

    @app.command()
    def demo(
        distributors: Annotated[int, typer.Option(min=2, help="size of the synthetic network")] = 300,
        orders: Annotated[int, typer.Option(min=0, help="orders to place")] = 800,
        seed: Annotated[int, typer.Option(help="random seed")] = 7,
        keep: Annotated[bool, typer.Option(help="keep the demo database afterwards")] = False,
    ) -> None:
        """A realistic synthetic network run end to end through the real API, with a summary."""
        from distnet.worker.demo import run_demo

        logging.basicConfig(level=logging.WARNING)
        run_demo(distributors=distributors, orders=orders, seed=seed, keep=keep)
