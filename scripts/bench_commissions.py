"""Commission attribution at scale: the production statement (commissions.repository.attribute,
aggregated postings) over every order of a generated network, next to the same run's baseline:
one raw INSERT ... SELECT joining the orders to the stored ancestors (distributor_upline).

    uv run python scripts/bench_commissions.py --size S|M|L   (100k / 1M / 10M orders)

Builds its own network with set-based SQL in a scratch database (dropped at the end)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, scratch_database  # noqa: E402
from sqlalchemy import text  # noqa: E402

from distnet.commissions import repository as commissions_repo  # noqa: E402
from distnet.db import make_engine, make_sessionmaker  # noqa: E402
from distnet.ledger.service import PLATFORM_ACCOUNTS  # noqa: E402

ORDERS = {"S": 100_000, "M": 1_000_000, "L": 10_000_000}
FANOUT = 5
RANKS = "ARRAY['member','member','member','silver','silver','gold','platinum']"


async def build(session, distributors: int, orders: int) -> None:
    """A FANOUT-ary sponsor tree (parent(i) = (i - 2) / FANOUT + 1), its bounded upline, cards,
    accounts and orders, all set-based."""
    await session.execute(
        text(
            """
        INSERT INTO distributor (id, code, name, sponsor_id, depth, path, rank)
        WITH RECURSIVE t(id, path, depth) AS (
            SELECT 1::bigint, '1'::ltree, 0
            UNION ALL
            SELECT c.id, t.path || c.id::text, t.depth + 1
              FROM t JOIN generate_series(2, :n) AS c(id) ON (c.id - 2) / :k + 1 = t.id
        )
        SELECT id, 'C' || id, 'd' || id, CASE WHEN id = 1 THEN NULL ELSE (id - 2) / :k + 1 END, depth, path,
               ("""
            + RANKS
            + """)[1 + (id % 7)]
          FROM t
        """
        ),
        {"n": distributors, "k": FANOUT},
    )
    await session.execute(
        text("SELECT setval(pg_get_serial_sequence('distributor', 'id'), :n)"), {"n": distributors}
    )
    await session.execute(
        text(
            """
        INSERT INTO distributor_upline (distributor_id, level, ancestor_id)
        SELECT d.id, k, ltree2text(subpath(d.path, nlevel(d.path) - 1 - k, 1))::bigint
          FROM distributor d, generate_series(1, 3) AS k WHERE nlevel(d.path) - 1 - k >= 0
        """
        )
    )
    await session.execute(
        text("INSERT INTO card (number, distributor_id) SELECT lpad(id::text, 16, '0'), id FROM distributor")
    )
    await session.execute(
        text(
            """
        INSERT INTO ledger_account (distributor_id, kind, currency)
        SELECT id, k, 'CNY' FROM distributor, unnest(ARRAY['pending','available','withheld','reserved','paid','owed']) k
        UNION ALL SELECT id, k, 'PTS' FROM distributor, unnest(ARRAY['points','points_owed']) k
        UNION ALL SELECT NULL, k, 'CNY' FROM unnest(CAST(:platform AS text[])) k
        """
        ),
        # every platform account a running system has (the first batch without tax_payable made
        # it while the other batches in flight waited on its insert: issue 19)
        {"platform": list(PLATFORM_ACCOUNTS)},
    )
    await session.execute(
        text(
            """
        INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at)
        SELECT 'bench', 'o' || g, '\\x00', s, s, 100 + (g * 7919) % 100000, 'CNY',
               now() - make_interval(secs => (g % 2592000))
          FROM (SELECT g, 1 + (g * 104729) % :n AS s FROM generate_series(1::bigint, :orders) g) x
        """
        ),
        {"n": distributors, "orders": orders},
    )
    await commissions_repo.ensure_default_plan(session)
    await session.commit()
    for table in ("distributor", "distributor_upline", "orders", "ledger_account", "commission_rate"):
        await session.execute(text(f"ANALYZE {table}"))
    await session.commit()


BASELINE = """
INSERT INTO commission (order_id, level, beneficiary_id, plan_id, rank_used, rate_bps, base, amount, status,
                        hold_until)
SELECT o.id, 1, o.seller_id, 1, 'member', 1000, o.amount, o.amount * 1000 / 10000, 'pending', o.placed_at
  FROM orders o
UNION ALL
SELECT o.id, u.level + 1, u.ancestor_id, 1, 'member', 300, o.amount, o.amount * 300 / 10000, 'pending', o.placed_at
  FROM orders o JOIN distributor_upline u ON u.distributor_id = o.seller_id AND u.level < 3
"""


async def explain_first_chunk(s, orders: int) -> None:
    """The plan of the attribution statement for the first chunk (no ANALYZE: it costs nothing),
    on stderr: at L the chunk took 2.8x its time at M for the same million orders."""
    await s.execute(commissions_repo.pg.bulk_settings("256MB"))
    await s.execute(commissions_repo.pg.NO_NESTED_LOOPS)
    await s.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS accrual_sums (owner bigint, kind text, currency text, "
            "amount bigint, n bigint) ON COMMIT DROP"
        )
    )
    plan = await s.execute(
        text(
            "EXPLAIN "
            + str(
                commissions_repo._bulk_text(
                    "SELECT id FROM orders", bool(await s.scalar(commissions_repo._QUALIFICATIONS))
                )
            )
        ),
        {
            "cap": 3,
            "currency": "CNY",
            "chunk_from": 1,
            "chunk_to": 1 + min(orders, commissions_repo.CHUNK_ORDERS),
        },
    )
    progress("plan of the first chunk:\n" + "\n".join(r[0] for r in plan))
    await s.rollback()


def progress(what: str) -> None:
    """A phase's figure on stderr as soon as it is known: an L run takes hours, and a run cut short
    still says how far it got."""
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


async def main(size: str, skip_baseline: bool = False) -> None:
    orders = ORDERS[size]
    distributors = max(1000, orders // 10)
    with scratch_database("bench_commissions") as url:
        engine = make_engine(url, pool_size=2)
        sm = make_sessionmaker(engine)
        async with sm() as s:
            t0 = time.perf_counter()
            await build(s, distributors, orders)
            setup = time.perf_counter() - t0
            progress(f"setup {setup:.1f} s")
            plan_id = await s.scalar(text("SELECT id FROM commission_plan WHERE version = 1"))
            baseline, base_rows = float("nan"), None
            if not skip_baseline:
                t0 = time.perf_counter()
                await s.execute(text(BASELINE.replace("1, 'member'", f"{plan_id}, 'member'")))
                await s.commit()
                baseline = time.perf_counter() - t0
                base_rows = await s.scalar(text("SELECT count(*) FROM commission"))
                progress(f"baseline {baseline:.1f} s, {base_rows} rows")
            await s.execute(
                text("SET LOCAL session_replication_role = replica")
            )  # TRUNCATE refused otherwise
            await s.execute(text("TRUNCATE commission"))
            await s.commit()
            await explain_first_chunk(s, orders)
            t0 = time.perf_counter()
            result = await commissions_repo.attribute_in_chunks(
                s, "SELECT id FROM orders", {}, cap=3, ref_type="bench", ref_id=size
            )
            await s.commit()
            seconds = time.perf_counter() - t0
            progress(f"ours {seconds:.1f} s")
            ok = await s.scalar(
                text(
                    "SELECT count(*) = 0 FROM (SELECT transaction_id FROM ledger_posting GROUP BY 1 HAVING sum(amount) <> 0) x"
                )
            )
        await engine.dispose()
    print(
        f"{'size':>5} {'orders':>10} {'distributors':>12} {'commissions':>12} {'baseline s':>10} {'ours s':>8} "
        f"{'ratio':>6}"
    )
    print(
        f"{size:>5} {orders:>10} {distributors:>12} {result['commissions']:>12} {baseline:>10.2f} {seconds:>8.2f} "
        f"{seconds / baseline:>6.2f}"
    )
    emit(
        {
            "name": "commissions",
            "size": size,
            "orders": orders,
            "distributors": distributors,
            "commissions": int(result["commissions"]),
            "baseline_rows": base_rows,
            "seconds": round(seconds, 3),
            "baseline_seconds": round(baseline, 3),
            "ratio": round(seconds / baseline, 3),
            "orders_per_second": round(orders / seconds),
            "setup_seconds": round(setup, 1),
            "ledger_balanced": ok,
        }
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(ORDERS), default="S")
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="time only the production path (no ratio: for checking a change at L, ~20 min shorter)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.size, args.skip_baseline))
