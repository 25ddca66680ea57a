"""The read path over HTTP: ``GET /me``, ``/cards/{number}``, ``/distributors/{id}`` and the first
downline page, each against the same run's ``GET /health`` (no key, no database), on
``distnet serve --processes N``. Every request carries one of ``--keys`` distributor keys (in
turn), so the servers' 5 s key cache does not hide the key lookup.

    uv run python scripts/bench_reads.py [--distributors 20000] [--keys 10000] [--seconds 10]
        [--connections 32] [--rate 400] [--processes 2]

Closed loop: ``--connections`` clients each send their next request when the last one answered;
requests/s and latency. Open loop: requests due at a fixed ``--rate`` (latency counts from when a
request was due, so a server that falls behind shows as latency), p50/p99. The load average is
printed before and after each phase. Builds its own network in a scratch database (dropped)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from _common import emit, percentile, plain, scratch_database  # noqa: E402
from bench_commissions import build  # noqa: E402
from bench_ingest import CpuMeter, serve, stop  # noqa: E402
from sqlalchemy import text  # noqa: E402

from distnet.db import make_engine, make_sessionmaker  # noqa: E402

ENDPOINTS = {
    "health": lambda d: "/health",
    "me": lambda d: "/api/v1/me",
    "card": lambda d: f"/api/v1/cards/{d:016d}",
    "distributor": lambda d: f"/api/v1/distributors/{d}",
    "downline": lambda d: f"/api/v1/distributors/{d}/downline",
}


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def make_keys(url: str, count: int, distributors: int) -> list[tuple[int, str]]:
    """``count`` distributor keys (distributor i holds key i), inserted in one COPY."""
    keys = [(1 + i % distributors, f"dn_{i:08x}_{secrets.token_urlsafe(32)}") for i in range(count)]
    with psycopg.connect(plain(url)) as conn:
        with conn.cursor().copy(
            "COPY api_key (name, prefix, key_hash, roles, distributor_id) FROM STDIN"
        ) as copy:
            for d, raw in keys:
                copy.write_row(
                    ("bench", raw[3:11], hashlib.sha256(raw.encode()).digest(), ["distributor"], d)
                )
        conn.execute("ANALYZE api_key")
    return keys


async def closed_loop(client, path, keys, connections: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker():
        while time.perf_counter() < stop_at:
            d, key = keys[next(counter) % len(keys)]
            t0 = time.perf_counter()
            async with client.get(path(d), headers={"Authorization": f"Bearer {key}"}) as r:
                await r.read()
                if r.status != 200:
                    errors.append(f"{r.status}")
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(connections)])
    elapsed = time.perf_counter() - t0
    return {
        "rps": round(len(latencies) / elapsed),
        "requests": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


async def open_loop(client, path, keys, rate: float, seconds: float, in_flight: int) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int, due: float):
        d, key = keys[i % len(keys)]
        async with gate:
            try:
                async with client.get(
                    path(d),
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as r:
                    await r.read()
                    if r.status != 200:
                        failures.append(str(r.status))
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(type(exc).__name__)
                return
        latencies.append(time.perf_counter() - due)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    _, late = await asyncio.wait(tasks, timeout=30)
    for t in late:
        t.cancel()
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "answered": len(latencies),
        "sent": len(tasks),
        "failed": len(failures),
        "unanswered": len(late),
    }


async def main(args: argparse.Namespace) -> None:
    with scratch_database("bench_reads") as url:
        engine = make_engine(url, pool_size=2)
        async with make_sessionmaker(engine)() as s:
            await build(s, args.distributors, 0)
            await s.execute(
                text(
                    "INSERT INTO distributor_closure (ancestor_id, depth, descendant_id) "
                    "SELECT ltree2text(subpath(path, i, 1))::bigint, nlevel(path) - 1 - i, id "
                    "FROM distributor, generate_series(0, nlevel(path) - 1) i"
                )
            )
            await s.commit()
            await s.execute(text("ANALYZE distributor_closure"))
            await s.execute(text("ANALYZE card"))
            await s.commit()
        await engine.dispose()
        keys = make_keys(url, args.keys, args.distributors)
        server = serve(url, 18766, args.processes)
        results: dict[str, dict] = {}
        try:
            connector = aiohttp.TCPConnector(limit=max(args.connections, 64))
            async with aiohttp.ClientSession("http://127.0.0.1:18766", connector=connector) as client:
                # warm-up: each process opens its pool and prepares its statements
                for path in ENDPOINTS.values():
                    await closed_loop(client, path, keys, args.connections, 1.0)
                me = psutil.Process()
                meter = CpuMeter(server, url)
                for name, path in ENDPOINTS.items():
                    before, cpu0 = load(), me.cpu_times()
                    meter.start()
                    closed = await closed_loop(client, path, keys, args.connections, args.seconds)
                    cpu1 = me.cpu_times()
                    # CPU ms per request of the server processes, the database's backends and this
                    # client: less sensitive to the neighbours' load than requests/s
                    closed["cpu_ms"] = meter.per_request_ms(closed["requests"])
                    closed["client_cpu_share"] = round(
                        (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / args.seconds, 2
                    )
                    closed["load"] = f"{before} -> {load()}"
                    results[name] = {"closed": closed}
                for name, path in ENDPOINTS.items():
                    before = load()
                    opened = await open_loop(client, path, keys, args.rate, args.seconds, args.in_flight)
                    opened["load"] = f"{before} -> {load()}"
                    results[name]["open"] = opened
        finally:
            stop(server)
    health = results["health"]["closed"]["rps"]
    print(
        f"{'endpoint':12} {'closed req/s':>12} {'x health':>9} {'p50':>8} {'p99':>8}   "
        f"{'open ' + str(int(args.rate)) + '/s p50':>14} {'p99':>8}  failed  {'CPU ms server/pg':>16}  load (closed | open)"
    )
    for name, r in results.items():
        c, o = r["closed"], r["open"]
        print(
            f"{name:12} {c['rps']:>12,} {c['rps'] / health:>9.2f} {c['p50_ms']:>8} {c['p99_ms']:>8}   "
            f"{o['p50_ms']!s:>14} {o['p99_ms']!s:>8}  {c['errors'] + o['failed'] + o['unanswered']:>6}  "
            f"{c['cpu_ms']['server']:>7} / {c['cpu_ms']['postgres']:<6}  {c['load']} | {o['load']}"
        )
    emit(
        {
            "name": "reads",
            "distributors": args.distributors,
            "keys": args.keys,
            "processes": args.processes,
            "connections": args.connections,
            "rate": args.rate,
            "seconds": args.seconds,
            "results": results,
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distributors", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
