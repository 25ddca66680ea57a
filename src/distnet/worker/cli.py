"""``distnet worker``, ``distnet scheduler``, ``distnet demo``."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import threading
from typing import Annotated

import typer

from distnet.kit.logs import configure_logging
from distnet.settings import BrokerSettings, get_settings, read_section

# Each command imports its machinery when it runs: registering the commands must not load every
# actor module and the app (``distnet keys create`` would pay for them).


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        threads: Annotated[int, typer.Option("--threads", "-t", min=1, help="worker threads")] = 8,
        queue: Annotated[list[str] | None, typer.Option("--queue", "-Q", help="only these queues")] = None,
    ) -> None:
        """Run a dramatiq worker for every actor module (events, jobs, settlement, payouts, risk)."""
        configure_logging()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        from distnet.worker.runner import broker, start_worker

        running = start_worker(threads, queue)

        typer.echo(
            f"worker: {threads} threads on {type(broker).__name__}, queues: "
            f"{', '.join(sorted(queue or broker.get_declared_queues()))}"
        )
        stop.wait()
        typer.echo("worker: stopping (finishing messages in progress)")
        running.stop(timeout=30_000)

    @app.command()
    def scheduler(
        inline: Annotated[
            bool, typer.Option(help="run jobs in this process instead of enqueueing them")
        ] = False,
        retry_interval: Annotated[float, typer.Option(help="seconds between leader-lock attempts")] = 5.0,
        heartbeat: Annotated[float, typer.Option(help="seconds between leader-connection checks")] = 5.0,
    ) -> None:
        """Fire the periodic jobs while this process holds the leader lock (run several for failover)."""
        from distnet.worker.scheduler import LeaderScheduler, install_signal_handlers

        configure_logging()

        async def main() -> None:
            leader = LeaderScheduler(
                get_settings(), inline=inline, retry_interval=retry_interval, heartbeat=heartbeat
            )
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
        # Our own broker namespace, set before the broker module is first imported: a production
        # worker on the same Redis must never take a demo message (it would run it against the
        # real database). An operator-chosen distnet-demo-* namespace is kept.
        if not read_section(BrokerSettings).namespace.startswith("distnet-demo-"):
            os.environ["DISTNET_BROKER_NAMESPACE"] = f"distnet-demo-{secrets.token_hex(4)}"
        from distnet.worker.demo import run_demo

        configure_logging(logging.WARNING)
        run_demo(distributors=distributors, orders=orders, seed=seed, keep=keep)
