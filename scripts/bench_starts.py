"""How fast distnet starts, as an operator meets it in local mode (no server URLs):

- ``serve`` on a new data directory (initdb, start, migrate, then the app) until ``/health`` answers;
- ``serve`` on that existing data directory, its embedded servers still running;
- ``serve`` on that existing data directory after ``distnet local stop``;
- ``keys create`` while the servers run;
- ``demo`` with its default sizes (with ``--demo``; it uses the configured or embedded servers).

    uv run python scripts/bench_starts.py [--repeat 2] [--demo]

Targets (issue 19): serve ready ≤ 5 s on an existing data directory, ≤ 20 s on a new one;
keys create ≤ 2 s; demo ≤ 60 s. The load average is printed with each figure."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def env(data_dir: Path, local: bool = True) -> dict[str, str]:
    drop = ("DISTNET_DATABASE_URL", "DISTNET_REDIS_URL") if local else ()
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "DISTNET_DATA_DIR": str(data_dir)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distnet(data_dir: Path, *args: str, local: bool = True) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "distnet", *args],
        env=env(data_dir, local),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return time.perf_counter() - t0, done


def serve_ready(data_dir: Path) -> float:
    """Seconds from starting ``distnet serve`` until ``/health`` answers 200 (then it is stopped)."""
    port = free_port()
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "distnet", "serve", "--port", str(port), "--no-workers"],
        env=env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - t0
            if server.poll() is not None or time.perf_counter() - t0 > 300:
                raise RuntimeError("serve did not become ready")
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)


def measure(name: str, fn) -> dict:
    before = load()
    seconds = fn()
    row = {"what": name, "seconds": round(seconds, 2), "load": f"{before} -> {load()}"}
    print(f"{name:48} {seconds:7.2f} s   load {row['load']}", flush=True)
    return row


def main(args: argparse.Namespace) -> None:
    rows = []
    for _ in range(args.repeat):
        data_dir = Path(tempfile.mkdtemp(prefix="distnet-starts-"))
        try:
            rows.append(measure("serve ready, new data directory", lambda d=data_dir: serve_ready(d)))
            rows.append(
                measure("serve ready, existing dir, servers running", lambda d=data_dir: serve_ready(d))
            )

            def keys(d=data_dir) -> float:
                seconds, done = distnet(d, "keys", "create", "--role", "admin", "--name", "bench")
                assert done.returncode == 0, done.stderr
                return seconds

            rows.append(measure("keys create, servers running", keys))
            distnet(data_dir, "local", "stop")
            rows.append(
                measure("serve ready, existing dir, servers stopped", lambda d=data_dir: serve_ready(d))
            )
        finally:
            distnet(data_dir, "local", "stop")
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.demo:

        def demo() -> float:
            seconds, done = distnet(Path(tempfile.gettempdir()) / "distnet-starts-demo", "demo", local=False)
            assert done.returncode == 0, done.stderr[-2000:]
            return seconds

        rows.append(measure("demo, default sizes", demo))
    print(json.dumps({"name": "starts", "rows": rows}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--demo", action="store_true", help="also time `distnet demo` with its defaults")
    main(parser.parse_args())
