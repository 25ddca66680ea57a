"""Order ingest: the CSV import (COPY into a staging table, set-based validation, insert, commission
attribution) against a plain binary COPY of the same rows into ``orders`` (the baseline); then
POST /orders/batch over HTTP on loopback and single POST /orders latency at a fixed rate.

    uv run python scripts/bench_ingest.py --size S|M|L   (100k / 1M / 10M imported orders)
        [--http-orders 20000] [--single-seconds 20] [--rate 200] [--single-in-flight 24] [--warmup-seconds 3]
        [--parts 2] [--processes 2] [--skip-import]

Builds its own network in a scratch database (dropped at the end)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import msgspec  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from _common import emit, percentile, plain, scratch_database  # noqa: E402
from bench_commissions import build  # noqa: E402
from sqlalchemy import text  # noqa: E402

from distnet.db import make_engine, make_sessionmaker  # noqa: E402
from distnet.orders.importer import import_csv_parts  # noqa: E402
from distnet.settings import BusinessSettings, DatabaseSettings, RedisSettings, Settings  # noqa: E402

ORDERS = {"S": 100_000, "M": 1_000_000, "L": 10_000_000}
HEADER = ["external_id", "card_number", "amount", "placed_at", "buyer_ref"]


def csv_bytes(n: int, distributors: int, prefix: str) -> bytes:
    buf = io.StringIO()
    buf.write(",".join(HEADER) + "\n")
    for i in range(n):
        seller = 1 + (i * 104729) % distributors
        buf.write(
            f"{prefix}{i},{seller:016d},{(i * 7919) % 100000 / 100 + 1:.2f},2026-11-01T00:00:00Z,b{i % 5000}\n"
        )
    return buf.getvalue().encode()


def copy_baseline(url: str, n: int, distributors: int) -> float:
    """Binary COPY of the same number of rows straight into orders (no validation, no commissions)."""
    placed = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        (
            "copy",
            f"c{i}",
            b"\0",
            1 + (i * 104729) % distributors,
            1 + (i * 104729) % distributors,
            100 + (i * 7919) % 100000,
            "CNY",
            placed,
        )
        for i in range(n)
    ]
    with psycopg.connect(plain(url)) as conn:
        t0 = time.perf_counter()
        with conn.cursor().copy(
            "COPY orders (source, external_id, body_hash, card_id, seller_id, amount, currency, "
            "placed_at) FROM STDIN WITH (FORMAT binary)"
        ) as copy:
            copy.set_types(["text", "text", "bytea", "int8", "int8", "int8", "text", "timestamptz"])
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - t0


# The batch path's same-run baseline (issue 19): one statement per 1,000 orders from a plain
# psycopg client writes the rows the HTTP batch writes (orders, three levels of commissions, one
# balanced ledger transaction of their postings, the sales credits of the seller and every
# ancestor, an order.created event each), without validation, idempotency, holds, ranks or the
# commissions' rate lookup (fixed member rates, as bench_commissions' baseline).
RAW_CTES = """
WITH src AS (
    SELECT * FROM unnest(%(ext)s::text[], %(card)s::text[], %(amount)s::bigint[]) AS s (external_id, card_number, amount)
), o AS (
    INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at)
    SELECT 'raw', s.external_id, '\\x00', c.id, c.distributor_id, s.amount, 'CNY', now()
      FROM src s JOIN card c ON c.number = s.card_number
    RETURNING id, seller_id, amount, placed_at
), cm AS (
    INSERT INTO commission (order_id, level, beneficiary_id, plan_id, rank_used, rate_bps, base, amount, status, hold_until)
    SELECT o.id, 1, o.seller_id, 1, 'member', 1000, o.amount, o.amount * 1000 / 10000, 'pending', o.placed_at FROM o
    UNION ALL
    SELECT o.id, u.level + 1, u.ancestor_id, 1, 'member', 300, o.amount, o.amount * 300 / 10000, 'pending', o.placed_at
      FROM o JOIN distributor_upline u ON u.distributor_id = o.seller_id AND u.level < 3
    RETURNING id, beneficiary_id, amount
), t AS (
    INSERT INTO ledger_transaction (kind, ref_type, ref_id) VALUES ('commission.accrued', 'raw', NULL) RETURNING id
), p AS (
    INSERT INTO ledger_posting (transaction_id, account_id, amount, commission_id)
    SELECT t.id, a.id, cm.amount, cm.id
      FROM cm CROSS JOIN t JOIN ledger_account a ON a.distributor_id = cm.beneficiary_id AND a.kind = 'pending'
                                               AND a.currency = 'CNY'
    UNION ALL
    SELECT t.id, x.id, -(SELECT sum(amount) FROM cm), NULL
      FROM t, ledger_account x WHERE x.distributor_id IS NULL AND x.kind = 'commission_expense' AND x.currency = 'CNY'
    RETURNING 1
), s AS (
    SELECT seller_id, distnet_local_day(placed_at) AS day, sum(amount)::bigint AS amt FROM o GROUP BY 1, 2
), sd AS (
    INSERT INTO sales_delta (distributor_id, day, personal, team)
    SELECT seller_id, day, amt, 0 FROM s
    UNION ALL
    SELECT c.ancestor_id, s.day, 0, s.amt FROM s JOIN distributor_closure c ON c.descendant_id = s.seller_id
    RETURNING 1
), e AS (
    INSERT INTO outbox_event (id, topic, distributor_id, payload)
    SELECT gen_random_uuid(), 'order.created', o.seller_id, jsonb_build_object('order_id', o.id, 'amount', o.amount)
      FROM o
    RETURNING 1
)"""
RAW_BATCH = (
    RAW_CTES
    + """
SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM cm), (SELECT count(*) FROM p), (SELECT count(*) FROM e)
"""
)
# The same, and the rows the batch has also written since points came (issue 18): each order's
# points lot (the member's earning rate, no hold or debt rules, no referral lots) and a balanced PTS
# transaction of their postings (one per lot, as the commissions' above).
RAW_BATCH_WITH_POINTS = (
    RAW_CTES
    + """, pl AS (
    INSERT INTO points_lot (distributor_id, source, source_ref, order_id, amount, remaining, expires_at)
    SELECT o.seller_id, 'order', o.id::text, o.id, o.amount * 10000 / 1000000, o.amount * 10000 / 1000000,
           now() + interval '12 months'
      FROM o
    RETURNING distributor_id, amount
), pt AS (
    INSERT INTO ledger_transaction (kind, ref_type, ref_id) VALUES ('points.earned', 'raw', NULL) RETURNING id
), pp AS (
    INSERT INTO ledger_posting (transaction_id, account_id, amount)
    SELECT pt.id, a.id, pl.amount
      FROM pl CROSS JOIN pt JOIN ledger_account a ON a.distributor_id = pl.distributor_id AND a.kind = 'points'
                                                AND a.currency = 'PTS'
    UNION ALL
    SELECT pt.id, x.id, -(SELECT sum(amount) FROM pl)
      FROM pt, ledger_account x WHERE x.distributor_id IS NULL AND x.kind = 'points_issued' AND x.currency = 'PTS'
    RETURNING 1
)
SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM cm), (SELECT count(*) FROM p), (SELECT count(*) FROM e)
"""
)


def raw_batch_baseline(
    url: str, batches: list[list[dict]], in_flight: int = 4, statement: str = RAW_BATCH, prefix: str = "raw"
) -> float:
    """Seconds for ``batches`` through ``statement`` on ``in_flight`` plain psycopg connections
    (each batch its own transaction, as each HTTP batch is)."""
    from concurrent.futures import ThreadPoolExecutor

    params = [
        {
            "ext": [f"{prefix}-{o['external_id']}" for o in b],
            "card": [o["card_number"] for o in b],
            "amount": [round(float(o["amount"]) * 100) for o in b],
        }
        for b in batches
    ]
    conns = [psycopg.connect(plain(url)) for _ in range(in_flight)]
    try:

        def run(i: int) -> None:
            conn = conns[i % in_flight]
            for k in range(i, len(params), in_flight):
                orders, commissions, postings, events = conn.execute(statement, params[k]).fetchone()
                assert orders == events == len(batches[k]) and postings == commissions + 1, (orders, postings)
                conn.commit()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(run, range(in_flight)))
        return time.perf_counter() - t0
    finally:
        for conn in conns:
            conn.close()


def raw_single_baseline(url: str, orders: list[dict], in_flight: int = 4) -> tuple[float, float]:
    """The single-order path's same-run floor: RAW_BATCH with one order per statement and per
    transaction (as POST /orders commits each), on ``in_flight`` plain psycopg connections, closed
    loop. Returns (seconds, PostgreSQL CPU ms per order, from the backends' own CPU times). It
    writes less than POST /orders (no points, no rank test, no hold or replay lookup): what no
    single-order path that writes these rows one transaction at a time can go below."""
    from concurrent.futures import ThreadPoolExecutor

    params = [
        {
            "ext": [f"raw1-{o['external_id']}"],
            "card": [o["card_number"]],
            "amount": [round(float(o["amount"]) * 100)],
        }
        for o in orders
    ]
    conns = [psycopg.connect(plain(url)) for _ in range(in_flight)]
    try:
        pids = [conn.execute("SELECT pg_backend_pid()").fetchone()[0] for conn in conns]
        for conn in conns:
            conn.commit()

        def cpu() -> float:
            return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)

        def run(i: int) -> None:
            conn = conns[i]
            for k in range(i, len(params), in_flight):
                conn.execute(RAW_BATCH, params[k], prepare=True).fetchone()
                conn.commit()

        before, t0 = cpu(), time.perf_counter()
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(run, range(in_flight)))
        seconds = time.perf_counter() - t0
        return seconds, (cpu() - before) * 1000 / max(1, len(params))
    finally:
        for conn in conns:
            conn.close()


def serve(url: str, port: int, processes: int) -> subprocess.Popen:
    """``distnet serve --processes N`` on the scratch database, as an operator would run it."""
    env = {
        **os.environ,
        "DISTNET_DATABASE_URL": url,
        "DISTNET_REDIS_URL": "redis://127.0.0.1:6379/0",
        "DISTNET_SECRET_KEY": "bench",
        "DISTNET_DATA_DIR": "/tmp/distnet-bench",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distnet",
            "serve",
            "--port",
            str(port),
            "--processes",
            str(processes),
            "--no-workers",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180  # a loaded shared machine took over 60 s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    stop(server)
    raise RuntimeError("the server did not start")


def stop(server: subprocess.Popen) -> None:
    """The server and the processes it forked (uvicorn's workers would outlive a killed parent)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


class CpuMeter:
    """CPU seconds used over a phase by the server's processes, the database's backends and this
    client (they all share these cores), to say where a request's cost goes."""

    def __init__(self, server: subprocess.Popen, url: str) -> None:
        self.server, self.url, self.dbname = psutil.Process(server.pid), plain(url), url.rsplit("/", 1)[1]
        self.before: dict[tuple[str, int], float] = {}

    def _sample(self) -> dict[tuple[str, int], float]:
        with psycopg.connect(self.url) as conn:
            backends = [
                r[0]
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.dbname],
                )
            ]
        pids = {
            "server": [self.server.pid, *(p.pid for p in self.server.children(recursive=True))],
            "postgres": backends,
            "client": [os.getpid()],
        }
        sample = {}
        for kind, ids in pids.items():
            for pid in ids:
                try:  # a process that ended since (a pool's connection closed) is left out
                    t = psutil.Process(pid).cpu_times()
                except psutil.NoSuchProcess:
                    continue
                sample[(kind, pid)] = t.user + t.system
        return sample

    def start(self) -> None:
        self.before = self._sample()

    def per_request_ms(self, requests: int) -> dict[str, float]:
        """CPU milliseconds per request by kind since start() (a backend started since counts whole)."""
        totals = {"server": 0.0, "postgres": 0.0, "client": 0.0}
        for (kind, pid), seconds in self._sample().items():
            totals[kind] += seconds - self.before.get((kind, pid), 0.0)
        return {kind: round(seconds * 1000 / max(1, requests), 2) for kind, seconds in totals.items()}


class _Created(msgspec.Struct):
    created: int


async def admin_key(sm) -> str:
    from distnet.kit.auth import create_key

    async with sm() as s:
        _, raw = await create_key(s, name="bench", roles=["admin"])
        await s.commit()
    return raw


async def fold(sm) -> None:
    """What the ``fold_sales`` job (every 30 s) does on a running system: the sales credits the
    imports and batches appended move into ``sales_daily``. The server runs with --no-workers,
    so without this every rank check would sum a backlog a running system never has."""
    from distnet.ranks.service import fold_sales

    async with sm() as s:
        await fold_sales(s)
        await s.commit()
        await s.execute(text("ANALYZE sales_delta"))
        await s.commit()


async def main(args: argparse.Namespace) -> None:
    n = ORDERS[args.size]
    distributors = max(1000, n // 10)
    with scratch_database("bench_ingest") as url:
        settings = Settings(
            data_dir=Path("/tmp/distnet-bench"),
            secret_key=b"bench",
            database=DatabaseSettings(url=url, pool_size=10),
            redis=RedisSettings(url="redis://127.0.0.1:6379/0"),
            business=BusinessSettings(),
        )
        engine = make_engine(url, pool_size=10)
        sm = make_sessionmaker(engine)
        async with sm() as s:
            await build(s, distributors, 0)
            # every ancestor (the sales rollup credits them all), not only the three nearest
            await s.execute(
                text(
                    "INSERT INTO distributor_closure (ancestor_id, depth, descendant_id) "
                    "SELECT ltree2text(subpath(path, i, 1))::bigint, nlevel(path) - 1 - i, id "
                    "FROM distributor, generate_series(0, nlevel(path) - 2) i"
                )
            )
            await s.commit()
        data = csv_bytes(n, distributors, "imp")
        chunks = [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)]
        import_plain = import_one = import_full = baseline = float("nan")

        async def timed_import(chunks: list[bytes], parts: int, attribute: bool) -> tuple[float, dict]:
            """What ``distnet orders import --parts N --execute`` does, on an empty orders table."""
            async with sm() as s:
                # the scratch database's tables refuse TRUNCATE (migration 0012) unless replication
                # role "replica" (superuser only) skips that trigger
                await s.execute(text("SET LOCAL session_replication_role = replica"))
                await s.execute(
                    text("TRUNCATE orders, refund, commission, ledger_posting, ledger_transaction")
                )
                await s.execute(text("UPDATE ledger_account SET balance = 0 WHERE balance <> 0"))
                await s.commit()
            t0 = time.perf_counter()
            result = await import_csv_parts(
                sm, settings, chunks, header=HEADER, attribute=attribute, parts=parts
            )
            return time.perf_counter() - t0, result

        if not args.skip_import:  # --skip-import: quick runs of the HTTP phases only
            import_one, _ = await timed_import(chunks, 1, False)
            import_plain, result = await timed_import(chunks, args.parts, False)
            import_full, result = await timed_import(chunks, args.parts, True)
            baseline = await asyncio.to_thread(copy_baseline, url, n, distributors)
            print(
                f"import {n} rows on {args.parts} connections: {import_plain:.2f}s without commissions "
                f"({n / import_plain:,.0f}/s; one connection {import_one:.2f}s), {import_full:.2f}s with commissions "
                f"({n / import_full:,.0f}/s); binary COPY {baseline:.2f}s ({n / baseline:,.0f}/s); "
                f"created {result['created']}, errors {result['errors']}"
            )

        key = await admin_key(sm)
        await fold(sm)
        del data, chunks
        gc.collect()
        gc.freeze()  # the client's own full collections paused it for ~60 ms (counted as latency)
        port = 18765
        server = serve(url, port, args.processes)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            http_total = args.http_orders
            meter = CpuMeter(server, url)
            # aiohttp as the load client: lighter than httpx, and the client's CPU is taken from
            # the same cores as the server's (its cost per request is printed with the figures)
            connector = aiohttp.TCPConnector(limit=max(args.single_in_flight, 4))
            async with aiohttp.ClientSession(
                f"http://127.0.0.1:{port}",
                headers=headers,
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=120),
            ) as client:
                sem = asyncio.Semaphore(4)

                async def send(body: bytes, size: int) -> None:
                    async with (
                        sem,
                        client.post(
                            "/api/v1/orders/batch", data=body, headers={"Content-Type": "application/json"}
                        ) as r,
                    ):
                        answer = await r.read()
                        # only ``created`` is read: the answer's 1,000 order views are skipped, not built
                        # (json.loads of the whole megabyte was most of the client's CPU)
                        created = (
                            msgspec.json.decode(answer, type=_Created).created if r.status == 200 else -1
                        )
                        assert created == size, answer[:300]

                # Rounds of the HTTP batches and the raw baseline on the same orders, in alternating
                # order (HTTP first, then raw first, ...): the machine's speed drifts by 10-20% within
                # a minute, and one pair of 4-second phases measured in turn drifted with it. The
                # ratio is of the totals; each round's figures are printed too.
                http_seconds = raw_seconds = points_seconds = 0.0
                rounds: list[tuple[float, float, float]] = []
                batch_cpu: dict[str, float] = {}
                for r in range(args.batch_rounds):
                    batches = [
                        [
                            {
                                "external_id": f"http-{r}-{b}-{i}",
                                "card_number": f"{1 + (b * 1000 + i) % distributors:016d}",
                                "amount": "12.34",
                            }
                            for i in range(1000)
                        ]
                        for b in range(http_total // 1000)
                    ]
                    # encoded before the clock starts, as the raw baseline's parameters are
                    bodies = [msgspec.json.encode({"orders": b}) for b in batches]
                    phases: dict[str, float] = {}
                    for phase in ("http", "raw", "points") if r % 2 == 0 else ("points", "raw", "http"):
                        if phase == "raw":
                            phases["raw"] = await asyncio.to_thread(raw_batch_baseline, url, batches)
                            continue
                        if phase == "points":
                            phases["points"] = await asyncio.to_thread(
                                raw_batch_baseline, url, batches, 4, RAW_BATCH_WITH_POINTS, "rawp"
                            )
                            continue
                        meter.start()
                        t0 = time.perf_counter()
                        await asyncio.gather(
                            *[send(body, len(b)) for body, b in zip(bodies, batches, strict=True)]
                        )
                        phases["http"] = time.perf_counter() - t0
                        cpu = meter.per_request_ms(http_total)
                        batch_cpu = {k: batch_cpu.get(k, 0) + v / args.batch_rounds for k, v in cpu.items()}
                    http_seconds += phases["http"]
                    raw_seconds += phases["raw"]
                    points_seconds += phases["points"]
                    await fold(sm)  # as the fold_sales job would between rounds
                    rounds.append((phases["http"], phases["raw"], phases["points"]))
                    print(
                        f"round {r + 1}: POST /orders/batch {http_total / phases['http']:,.0f} orders/s "
                        f"(CPU ms per order {cpu}), raw SQL {http_total / phases['raw']:,.0f}/s: "
                        f"{phases['raw'] / phases['http']:.2f}x, raw SQL with points "
                        f"{http_total / phases['points']:,.0f}/s: {phases['points'] / phases['http']:.2f}x"
                    )
                batch_cpu = {k: round(v, 3) for k, v in batch_cpu.items()}
                http_total *= args.batch_rounds
                print(
                    f"POST /orders/batch: {http_total} orders in {http_seconds:.2f}s = {http_total / http_seconds:,.0f}/s; "
                    f"CPU ms per order: {batch_cpu}"
                )
                print(
                    f"raw SQL baseline, one statement per batch on 4 connections: {http_total / raw_seconds:,.0f} "
                    f"orders/s; HTTP batch reaches {raw_seconds / http_seconds:.2f}x of it "
                    f"(rounds: {', '.join(f'{raw / http:.2f}' for http, raw, _ in rounds)})"
                )
                print(
                    f"raw SQL baseline with the points lots and postings the batch also writes: "
                    f"{http_total / points_seconds:,.0f} orders/s; HTTP batch reaches {points_seconds / http_seconds:.2f}x "
                    f"of it (rounds: {', '.join(f'{p / http:.2f}' for http, _, p in rounds)})"
                )
                await fold(sm)

                # Open loop: request i is due at start + i / rate and its latency counts from then (a
                # server that falls behind shows as latency, not as a slower send rate). At most
                # ``--single-in-flight`` requests are outstanding (below the server's pool of 10 + 20),
                # each gives up after 5 s, and the phase stops by itself at its end + 30 s. A warm-up at
                # the same rate comes first and is not counted: each server process opens its pool's
                # connections and prepares its statements (the first five runs of a statement on a
                # connection are planned one by one) on its first requests.
                async def open_loop(prefix: str, seconds: float):
                    latencies: list[tuple[float, float]] = []
                    failures: list[str] = []
                    interval = 1 / args.rate
                    in_flight = asyncio.Semaphore(args.single_in_flight)

                    async def one(i: int, due: float):
                        body = {
                            "external_id": f"{prefix}-{i}",
                            "card_number": f"{1 + i % distributors:016d}",
                            "amount": "9.99",
                        }
                        async with in_flight:
                            try:
                                async with client.post(
                                    "/api/v1/orders", json=body, timeout=aiohttp.ClientTimeout(total=5)
                                ) as r:
                                    status, answer = r.status, await r.read()
                            except (aiohttp.ClientError, TimeoutError) as exc:
                                failures.append(type(exc).__name__)
                                return
                        latencies.append((time.perf_counter() - due, due - start))
                        if status != 201:
                            failures.append(f"{status}: {answer[:120]!r}")

                    tasks = []
                    start = time.perf_counter()
                    for i in range(int(args.rate * seconds)):
                        due = start + i * interval
                        delay = due - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.create_task(one(i, due)))
                    _, late = await asyncio.wait(tasks, timeout=30) if tasks else (set(), set())
                    for t in late:
                        t.cancel()
                    return latencies, failures, late, tasks, time.perf_counter() - start

                warm, warm_failures, _, _, _ = await open_loop("warmup", args.warmup_seconds)
                if warm:
                    print(
                        f"warm-up at {args.rate}/s for {args.warmup_seconds}s: p99 "
                        f"{percentile([x for x, _ in warm], 99) * 1000:.1f} ms (not counted), {len(warm_failures)} failed"
                    )
                meter.start()
                timed, failures, late, tasks, single_seconds = await open_loop("single", args.single_seconds)
                single_cpu = meter.per_request_ms(len(timed))
                latencies = [x for x, _ in timed]
                slowest = sorted(timed, reverse=True)[:5]
                print("slowest: " + ", ".join(f"{x * 1000:.0f} ms at +{at:.2f}s" for x, at in slowest))
                p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
                print(
                    f"single POST /orders at {args.rate}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} "
                    f"answered of {len(tasks)} in {single_seconds:.1f}s, {len(failures)} failed, {len(late)} unanswered)"
                    + (f"; first failure: {failures[0]}" if failures else "")
                    + f"; CPU ms per request: {single_cpu}"
                )
                raw_orders = [
                    {
                        "external_id": f"single-{i}",
                        "card_number": f"{1 + i % distributors:016d}",
                        "amount": "9.99",
                    }
                    for i in range(len(timed))
                ]
                raw_single_seconds, raw_single_pg = await asyncio.to_thread(
                    raw_single_baseline, url, raw_orders
                )
                print(
                    f"raw SQL single-order baseline, one statement and transaction per order on 4 connections: "
                    f"{len(raw_orders) / raw_single_seconds:,.0f} orders/s, PostgreSQL CPU {raw_single_pg:.2f} ms per order; "
                    f"POST /orders uses {single_cpu['postgres'] / raw_single_pg:.2f}x of it"
                )
        finally:
            stop(server)
        await engine.dispose()
    emit(
        {
            "name": "ingest",
            "size": args.size,
            "orders": n,
            "seconds": round(import_plain, 3),
            "baseline_seconds": round(baseline, 3),
            "ratio": round(baseline / import_plain, 3),
            "import_orders_per_second": round(n / import_plain) if import_plain == import_plain else None,
            "import_parts": args.parts,
            "import_one_connection_seconds": round(import_one, 3),
            "import_with_commissions_seconds": round(import_full, 3),
            "import_with_commissions_orders_per_second": round(n / import_full)
            if import_full == import_full
            else None,
            "http_batch_orders_per_second": round(http_total / http_seconds) if http_total else None,
            "raw_batch_orders_per_second": round(http_total / raw_seconds) if http_total else None,
            "http_batch_vs_raw": round(raw_seconds / http_seconds, 2) if http_total else None,
            "http_batch_vs_raw_rounds": [round(raw / http, 2) for http, raw, _ in rounds],
            "raw_batch_with_points_orders_per_second": round(http_total / points_seconds)
            if http_total
            else None,
            "http_batch_vs_raw_with_points": round(points_seconds / http_seconds, 2) if http_total else None,
            "http_batch_vs_raw_with_points_rounds": [round(p / http, 2) for http, _, p in rounds],
            "single_p50_ms": round(p50, 1),
            "single_p99_ms": round(p99, 1),
            "single_rate": args.rate,
            "single_failed": len(failures),
            "single_unanswered": len(late),
            "server_processes": args.processes,
            "batch_cpu_ms_per_order": batch_cpu,
            "single_cpu_ms_per_request": single_cpu,
            "raw_single_postgres_cpu_ms": round(raw_single_pg, 3),
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(ORDERS), default="S")
    parser.add_argument("--http-orders", type=int, default=20_000, help="orders per batch round")
    parser.add_argument(
        "--batch-rounds", type=int, default=3, help="rounds of HTTP batches and raw baseline, alternating"
    )
    parser.add_argument("--single-seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--single-in-flight", type=int, default=24)
    parser.add_argument(
        "--warmup-seconds", type=float, default=3, help="single orders at --rate first, not counted"
    )
    parser.add_argument("--skip-import", action="store_true", help="only the HTTP phases")
    parser.add_argument(
        "--processes", type=int, default=2, help="server processes (distnet serve --processes)"
    )
    parser.add_argument(
        "--parts", type=int, default=2, help="import connections (distnet orders import --parts)"
    )
    asyncio.run(main(parser.parse_args()))
