"""Risk benchmark: a full scan (every detector, modes as default) over a generated network and its
orders, next to the same run's baseline (scipy connected components on the same edge arrays, loaded
from PostgreSQL), then the per-order checks' latency on a sample of orders.

    uv run python scripts/bench_risk.py --size S|M|L [--orders-per-distributor 10] [--keep]

Orders: ``orders-per-distributor`` per distributor over the last 30 days (L: 1M distributors, 10M
orders), random buyers, with planted brushing (repeat buyers, velocity bursts, self purchases, a
few 3-rings), distributors sharing a device with their sponsor, and 30% of distributors behind 50
carrier IPs (pruned by identity_cluster). The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import psycopg
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).parent))
from _common import SIZES, emit, percentile, plain, scratch_database  # noqa: E402
from gen_network import build, load  # noqa: E402

from distnet.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from distnet.kit.auth import SYSTEM  # noqa: E402
from distnet.risk.checks import check_order  # noqa: E402
from distnet.risk.rules import load_rules  # noqa: E402
from distnet.risk.scan import run_scan  # noqa: E402

ORDER_INDEXES = (
    "ix_orders_seller_placed",
    "ix_orders_card_placed",
    "ix_orders_buyer_ref",
    "ix_orders_buyer_payment",
    "ix_orders_buyer_device",
)


def seed_identities(url: str, n: int) -> None:
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute("""
            UPDATE distributor SET
              device_hash = substr(decode(md5('dev' || CASE WHEN id % 5000 = 7 AND sponsor_id IS NOT NULL
                                                      THEN sponsor_id ELSE id END), 'hex'), 1, 16),
              phone_hash = CASE WHEN id % 3 = 0 THEN substr(decode(md5('ph' || (id - id % 3000 * (id % 7000 / 6999))),
                                                                      'hex'), 1, 16) END,
              payment_hash = substr(decode(md5('pay' || id), 'hex'), 1, 16),
              ip_hash = CASE WHEN id % 10 < 3 THEN substr(decode(md5('carrier' || (id % 50)), 'hex'), 1, 16)
                             ELSE substr(decode(md5('ip' || id), 'hex'), 1, 16) END
        """)
        conn.execute("VACUUM ANALYZE distributor")


def seed_orders(url: str, n: int, per: int) -> int:
    total = n * per
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        for name in ORDER_INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        # random orders: seller uniform, buyers from a pool of total/3 refs, 30 days back
        conn.execute(f"""
            INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at,
                                refunded_amount, buyer_ref_hash, buyer_device_hash, buyer_payment_hash)
            SELECT 'bench', g::text, '\\x00', s, s, 1000 + (g % 9000), 'CNY',
                   now() - make_interval(secs => (g * 7919 % 2592000)),
                   CASE WHEN g % 40 = 0 THEN 1000 ELSE 0 END,
                   substr(decode(md5('buyer' || (g * 2654435761 % greatest({total} / 3, 1))), 'hex'), 1, 16),
                   substr(decode(md5('bdev' || g), 'hex'), 1, 16),
                   substr(decode(md5('bpay' || g), 'hex'), 1, 16)
              FROM (SELECT g, 1 + (g * 48271 % {n}) AS s FROM generate_series(CAST(1 AS bigint), {total}) g) x
        """)
        # planted brushing: every 1000th card gets 6 orders from one buyer within 30 minutes
        conn.execute(f"""
            INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at,
                                buyer_ref_hash)
            SELECT 'plant', c || '-' || k, '\\x00', c, c, 5000, 'CNY', now() - interval '2 hours'
                   + make_interval(mins => k * 5), substr(decode(md5('brusher' || c), 'hex'), 1, 16)
              FROM generate_series(1000, {n}, 1000) c, generate_series(1, 6) k
        """)
        # self purchases: every 2000th seller buys with its own payment fingerprint
        conn.execute(f"""
            INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at,
                                buyer_payment_hash)
            SELECT 'self', c::text, '\\x00', c, c, 3000, 'CNY', now() - interval '1 day',
                   substr(decode(md5('pay' || c), 'hex'), 1, 16)
              FROM generate_series(1500, {n}, 2000) c
        """)
        # 3-rings: a buys from b, b from c, c from a
        conn.execute(f"""
            INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at,
                                buyer_payment_hash)
            SELECT 'ring', r || '-' || k, '\\x00', r + (k + 1) % 3, r + (k + 1) % 3, 4000, 'CNY',
                   now() - interval '3 days', substr(decode(md5('pay' || (r + k)), 'hex'), 1, 16)
              FROM generate_series(100, {n} - 3, 5000) r, generate_series(0, 2) k
        """)
        conn.execute("SET session_replication_role = origin")
        for name, cols in zip(
            ORDER_INDEXES,
            (
                "seller_id, placed_at",
                "card_id, placed_at",
                "buyer_ref_hash",
                "buyer_payment_hash",
                "buyer_device_hash",
            ),
            strict=True,
        ):
            conn.execute(f"CREATE INDEX {name} ON orders ({cols})")
        conn.execute("VACUUM ANALYZE orders")
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]


def baseline(url: str) -> float:
    """scipy connected components over the same edge arrays the detectors read (sponsor edges and
    distributor-identifier links), loaded from PostgreSQL with the same driver."""
    t = time.perf_counter()
    with psycopg.connect(plain(url)) as conn:
        edges = np.array(
            conn.execute("SELECT id, coalesce(sponsor_id, id) FROM distributor").fetchall(), dtype=np.int64
        )
    n = int(edges.max()) + 1
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    connected_components(graph, directed=False)
    return time.perf_counter() - t


async def scan_and_checks(url: str, samples: int) -> dict:
    engine = make_engine(url, pool_size=2)
    try:
        sm = make_sessionmaker(engine)
        t = time.perf_counter()
        async with session_scope(sm) as session:
            result = await run_scan(session, SYSTEM)
        seconds = time.perf_counter() - t
        timings = []
        async with session_scope(sm) as session:
            rules = await load_rules(session)
            max_id = await session.scalar(__import__("sqlalchemy").text("SELECT max(id) FROM orders"))
            rng = np.random.default_rng(3)
            for oid in rng.integers(1, max_id + 1, samples).tolist():
                t0 = time.perf_counter()
                await check_order(session, int(oid), rules=rules)
                timings.append(time.perf_counter() - t0)
            await session.rollback()
        return {"seconds": seconds, "scan": msgspec.to_builtins(result), "timings": timings}
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--orders-per-distributor", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    n = SIZES[args.size]
    with scratch_database("bench_risk", keep=args.keep) as url:
        t = time.perf_counter()
        load(url, build(n), accounts=True)
        seed_identities(url, n)
        orders = seed_orders(url, n, args.orders_per_distributor)
        setup = time.perf_counter() - t
        base = baseline(url)
        run = asyncio.run(scan_and_checks(url, args.samples))
        per_rule = {k: v["seconds"] for k, v in run["scan"]["stats"]["rules"].items()}
        findings = {k: v["findings"] for k, v in run["scan"]["stats"]["rules"].items()}
        emit(
            {
                "name": "risk_scan",
                "size": args.size,
                "distributors": n,
                "orders": orders,
                "seconds": round(run["seconds"], 3),
                "baseline_seconds": round(base, 3),
                "ratio": round(run["seconds"] / base, 2),
                "setup_seconds": round(setup, 1),
                "cases_opened": run["scan"]["cases_opened"],
                "findings": findings,
                "rule_seconds": per_rule,
                "per_order_p50_ms": round(percentile(run["timings"], 50) * 1000, 3),
                "per_order_p99_ms": round(percentile(run["timings"], 99) * 1000, 3),
            }
        )


if __name__ == "__main__":
    main()
