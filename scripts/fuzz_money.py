"""Run the stateful money fuzz (tests/money_machine.py) long: ``--steps`` API steps or more, each
followed by ``ledger verify`` and the refused-step check, on a scratch database of its own.

    uv run python scripts/fuzz_money.py --steps 10000 [--machine-steps 50] [--workers 4]

Prints one JSON line: steps, refused steps, seconds, the result and the count of each step kind
(ok / refused). Exit code 1 with hypothesis's shrunk failing sequence if a check fails. With
``--workers N`` it runs N copies at once (each on its own scratch database, steps split between
them) and adds their figures up.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the machine lives with the tests

import hypothesis  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402
from litestar.testing import TestClient  # noqa: E402

from distnet.app import create_app  # noqa: E402
from distnet.models import Base  # noqa: E402
from distnet.settings import (  # noqa: E402
    BusinessSettings,
    DatabaseSettings,
    NotifySettings,
    RedisSettings,
    Settings,
)
from scripts._common import scratch_database  # noqa: E402
from tests import money_machine  # noqa: E402


def reset_sql() -> list[str]:
    tables = ", ".join(f'"{t}"' for t in Base.metadata.tables if t != "alembic_version")
    # the money tables refuse TRUNCATE; the replica role skips that trigger (superuser only, as the tests)
    return [
        "SET session_replication_role = replica",
        f"TRUNCATE {tables} RESTART IDENTITY CASCADE",
        "RESET session_replication_role",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="stop after at least this many steps")
    parser.add_argument(
        "--machine-steps", type=int, default=50, help="steps per machine (hypothesis example)"
    )
    parser.add_argument("--workers", type=int, default=1, help="copies run at once, each on its own database")
    args = parser.parse_args()
    if args.workers > 1:
        return run_workers(args.steps, args.machine_steps, args.workers)

    import logging
    import os
    import tempfile

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise

    redis_url = os.environ.get("DISTNET_REDIS_URL", "redis://127.0.0.1:1/0")  # the fuzz never publishes
    started = time.monotonic()
    result = "ok"
    with scratch_database("fuzz_money") as url, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            secret_key=b"fuzz-money",
            database=DatabaseSettings(url=url),
            redis=RedisSettings(url=redis_url),
            business=BusinessSettings(),
            # as in the suite: the request rate limits (Redis, shared by every run) would
            # refuse the machine's registrations after the first few hundred
            notify=NotifySettings(rate_limits="off"),
        )
        with TestClient(app=create_app(settings, database_url=url, redis_url=redis_url)) as client:
            env = money_machine.configure(client, url, reset_sql())
            env.progress = lambda e: print(
                f"{e.steps} steps, {e.refused} refused, {time.monotonic() - started:.0f}s",
                file=sys.stderr,
                flush=True,
            )
            machines = -(-args.steps // args.machine_steps) + 1
            try:
                while env.steps < args.steps:
                    run_state_machine_as_test(
                        money_machine.MoneyMachine,
                        settings=hypothesis.settings(
                            max_examples=machines,
                            stateful_step_count=args.machine_steps,
                            deadline=None,
                            database=None,
                            suppress_health_check=list(HealthCheck),
                        ),
                    )
            except Exception as exc:
                result = f"FAILED: {type(exc).__name__}: {exc}"
                raise
            finally:
                money_machine.close(env)
                print(
                    json.dumps(
                        {
                            "steps": env.steps,
                            "refused": env.refused,
                            "seconds": round(time.monotonic() - started, 1),
                            "machine_steps": args.machine_steps,
                            "result": result[:2000],
                            "kinds": dict(sorted(env.counts.items())),
                        }
                    )
                )
    return 0


def run_workers(steps: int, machine_steps: int, workers: int) -> int:
    import subprocess

    started = time.monotonic()
    share = -(-steps // workers)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--steps", str(share), "--machine-steps", str(machine_steps)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    reports = []
    for proc in procs:
        out, _ = proc.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        reports.append(
            json.loads(lines[-1]) if lines else {"result": f"FAILED: exit {proc.returncode}, no report"}
        )
    kinds: dict[str, int] = {}
    for report in reports:
        for kind, n in report.get("kinds", {}).items():
            kinds[kind] = kinds.get(kind, 0) + n
    failed = [r["result"] for r in reports if r["result"] != "ok"]
    print(
        json.dumps(
            {
                "steps": sum(r.get("steps", 0) for r in reports),
                "refused": sum(r.get("refused", 0) for r in reports),
                "seconds": round(time.monotonic() - started, 1),
                "workers": workers,
                "machine_steps": machine_steps,
                "result": failed[0] if failed else "ok",
                "kinds": dict(sorted(kinds.items())),
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
