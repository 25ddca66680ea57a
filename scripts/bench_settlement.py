"""Settlement and payout run on generated commissions, next to the same run's raw-SQL baseline,
and the bank file export of the run (CSV and XLSX).

    uv run python scripts/bench_settlement.py --size S|M|L [--workers 2] [--partitions N]

S = 100k commissions over 10k distributors, M = 1M over 100k, L = 10M over 1M. 10% of the
commissions are still inside their return window, 1% of the distributors have a violation hold
(their commissions are withheld) and 1% owe money (netted first). The data is built set-based in a
scratch database on the server of DISTNET_DATABASE_URL; the baseline runs on a copy of it
(CREATE DATABASE ... TEMPLATE), so both start from identical, freshly written tables. Both
databases are dropped at the end.

Ours: ``settlement.service.settle`` with ``--workers`` concurrent workers sharing the run's
partitions (as dramatiq workers would), then ``payouts.service.create_run`` for every eligible
distributor. Baseline: one raw ``UPDATE commission ... FROM orders`` for the status move and one raw
``INSERT INTO payout_item ... SELECT ... GROUP BY`` for the payout totals, and one statement that
links each item to its commissions and marks them reserved (no ledger, no netting, no tax, no
holds, no events). The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, peak_rss_mb, plain, scratch_database, server_url  # noqa: E402

from distnet.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from distnet.kit.auth import SYSTEM, Principal, Role  # noqa: E402
from distnet.kit.crypto import encrypt  # noqa: E402
from distnet.settings import BusinessSettings, DatabaseSettings, RedisSettings, Settings  # noqa: E402

SIZES = {"S": (100_000, 10_000), "M": (1_000_000, 100_000), "L": (10_000_000, 1_000_000)}
SECRET = b"bench-secret"
MIN_AMOUNT = 100  # 1.00


def generate(url: str, commissions: int, distributors: int) -> dict[str, float]:
    timings = {}
    bank = encrypt(SECRET, "6222 0200 1234 5678 901")
    holder = encrypt(SECRET, "持卡人")
    resident = encrypt(SECRET, "110101199003070011")
    with psycopg.connect(plain(url), autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            """INSERT INTO distributor (id, code, name, depth, path)
               SELECT i, 'B' || lpad(i::text, 9, '0'), 'Bench distributor ' || i, 0, text2ltree(i::text)
                 FROM generate_series(1, %s) i""",
            (distributors,),
        )
        conn.execute(
            """INSERT INTO payout_account (distributor_id, method, holder_name_enc, account_number_enc, account_last4,
                                           bank_name, resident_id_enc, resident_id_last4, status, cooling_until)
               SELECT i, 'bank_card', %s, %s, '8901', 'bench bank', %s, '0011', 'active', '2020-01-01'
                 FROM generate_series(1, %s) i""",
            (holder, bank, resident, distributors),
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('distributor', 'id'), %s)", (distributors,))
        conn.execute(
            "INSERT INTO card (id, number, distributor_id) SELECT i, '62' || lpad(i::text, 14, '0'), i "
            "FROM generate_series(1, %s) i",
            (distributors,),
        )
        conn.execute(
            """INSERT INTO ledger_account (distributor_id, kind, currency, balance)
               SELECT i, k, 'CNY', 0 FROM generate_series(1, %s) i,
                      unnest(ARRAY['pending','available','withheld','reserved','paid','owed']) k""",
            (distributors,),
        )
        conn.execute("""INSERT INTO ledger_account (distributor_id, kind, currency, balance)
                        SELECT NULL, k, 'CNY', 0 FROM unnest(ARRAY['commission_expense','payout_clearing',
                        'forfeited_income','repayment_clearing','tax_payable']) k""")
        found = conn.execute("SELECT id FROM commission_plan ORDER BY version LIMIT 1").fetchone()
        plan = (
            found[0]
            if found
            else conn.execute(
                """INSERT INTO commission_plan (version, name, max_levels, hold_days, min_order_amount, effective_from)
               VALUES (1, 'bench', 3, 15, 0, '2020-01-01') RETURNING id"""
            ).fetchone()[0]
        )
        timings["distributors"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute(
            """INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at)
               SELECT 'bench', 'o' || g, '\\x00', d, d, 1000 + floor(random() * 99000)::bigint, 'CNY',
                      now() - interval '20 days'
                 FROM (SELECT g, 1 + floor(random() * %s)::bigint AS d FROM generate_series(1, %s) g) s""",
            (distributors, commissions),
        )
        conn.execute(
            """INSERT INTO commission (order_id, level, beneficiary_id, plan_id, rank_used, rate_bps, base, amount,
                                       reversed, status, hold_until)
               SELECT o.id, 1, o.seller_id, %s, 'member', 1000, o.amount, o.amount / 10, 0, 'pending',
                      CASE WHEN o.id %% 10 = 0 THEN now() + interval '5 days' ELSE now() - interval '5 days' END
                 FROM orders o""",
            (plan,),
        )
        timings["orders_and_commissions"] = time.perf_counter() - t
        t = time.perf_counter()
        txn = conn.execute(
            "INSERT INTO ledger_transaction (kind, memo) VALUES ('commission_accrued', 'bench') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            """WITH s AS (SELECT beneficiary_id AS d, sum(amount) AS total FROM commission GROUP BY 1)
               INSERT INTO ledger_posting (transaction_id, account_id, amount)
               SELECT %s, a.id, s.total FROM s JOIN ledger_account a ON a.distributor_id = s.d AND a.kind = 'pending'
               UNION ALL
               SELECT %s, a.id, -(SELECT sum(total) FROM s) FROM ledger_account a
                WHERE a.distributor_id IS NULL AND a.kind = 'commission_expense'""",
            (txn, txn),
        )
        debt = conn.execute(
            "INSERT INTO ledger_transaction (kind, memo) VALUES ('commission_reversal', 'bench') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            """INSERT INTO ledger_posting (transaction_id, account_id, amount)
               SELECT %s, a.id, -5000 FROM ledger_account a WHERE a.kind = 'owed' AND a.distributor_id %% 100 = 3
               UNION ALL
               SELECT %s, a.id, 5000 * (SELECT count(*) FROM ledger_account WHERE kind = 'owed'
                                         AND distributor_id %% 100 = 3)
                 FROM ledger_account a WHERE a.distributor_id IS NULL AND a.kind = 'commission_expense'""",
            (debt, debt),
        )
        conn.execute(
            """INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key)
                        SELECT i, i, 'order_brushing', 'rule', 'bench' FROM generate_series(1, %s) i
                         WHERE i %% 100 = 7""",
            (distributors,),
        )
        timings["ledger_and_holds"] = time.perf_counter() - t
        conn.execute("VACUUM ANALYZE")
    return timings


def clone(url: str) -> str:
    """A copy of the generated database for the baseline (the source must have no connections)."""
    src = psycopg.conninfo.conninfo_to_dict(plain(url))["dbname"]
    name = f"{src}_base"
    with psycopg.connect(plain(server_url()), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(src))
        )
    return url.rsplit("/", 1)[0] + "/" + name


def drop(name_url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(plain(name_url))["dbname"]
    with psycopg.connect(plain(server_url()), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def baseline(url: str) -> dict[str, float]:
    with psycopg.connect(plain(url)) as conn:
        t = time.perf_counter()
        moved = conn.execute(
            """UPDATE commission c SET status = 'available', available_at = clock_timestamp()
                 FROM orders o WHERE o.id = c.order_id AND c.status = 'pending' AND c.hold_until <= now()"""
        ).rowcount
        conn.commit()
        t1 = time.perf_counter()
        run = conn.execute(
            "INSERT INTO payout_run (min_amount, cutoff, created_by) VALUES (%s, now(), 'bench') "
            "RETURNING id",
            (MIN_AMOUNT,),
        ).fetchone()[0]
        items = conn.execute(
            """INSERT INTO payout_item (run_id, distributor_id, amount, currency)
               SELECT %s, beneficiary_id, sum(amount - reversed), 'CNY' FROM commission WHERE status = 'available'
                GROUP BY beneficiary_id HAVING sum(amount - reversed) >= %s""",
            (run, MIN_AMOUNT),
        ).rowcount
        # an item records the commissions it pays and they become 'reserved' (issue 13): the same
        # writes, without the oldest-first split of the item's amount
        conn.execute(
            """WITH linked AS (
                   INSERT INTO payout_item_commission (item_id, commission_id, amount)
                   SELECT i.id, c.id, c.amount - c.reversed FROM payout_item i
                     JOIN commission c ON c.beneficiary_id = i.distributor_id AND c.status = 'available'
                    WHERE i.run_id = %s RETURNING commission_id)
               UPDATE commission c SET status = 'reserved' FROM linked WHERE c.id = linked.commission_id""",
            (run,),
        )
        conn.commit()
        t2 = time.perf_counter()
    return {"settlement": t1 - t, "payout": t2 - t1, "moved": moved, "items": items}


async def ours(url: str, workers: int, partitions: int | None) -> dict[str, float]:
    from distnet.payouts import export
    from distnet.payouts.service import approve_run, create_run, start_export
    from distnet.settlement.service import settle

    settings = Settings(
        Path(tempfile.gettempdir()),
        SECRET,
        DatabaseSettings(url),
        RedisSettings("redis://unused"),
        BusinessSettings(),
    )
    engine = make_engine(url, pool_size=workers + 1)
    sm = make_sessionmaker(engine)
    try:
        t = time.perf_counter()
        results = await asyncio.gather(
            *(settle(sm, partitions=partitions, triggered_by="bench") for _ in range(workers))
        )
        t1 = time.perf_counter()
        async with session_scope(sm) as session:
            run = await create_run(
                session, settings=settings, principal=SYSTEM, min_amount=f"{MIN_AMOUNT / 100:.2f}"
            )
        t2 = time.perf_counter()
        approver = Principal(key_id=999_999, name="bench-approver", roles=frozenset({Role.finance_approver}))
        async with session_scope(sm) as session:
            await approve_run(session, principal=approver, run_id=run.id)
            await start_export(session, principal=SYSTEM, run_id=run.id, fmt="xlsx")
        rss_before = peak_rss_mb()
        out = {}
        for fmt, stream in (("csv", export.csv_stream), ("xlsx", export.xlsx_stream)):
            te = time.perf_counter()
            size = 0
            with open(os.devnull, "wb") as sink:  # noqa: ASYNC230
                async for chunk in stream(sm, SECRET, run.id):
                    size += len(chunk)
                    sink.write(chunk)
            out[f"export_{fmt}_seconds"] = time.perf_counter() - te
            out[f"export_{fmt}_bytes"] = size
        return {
            "settlement": t1 - t,
            "payout": t2 - t1,
            "moved": results[0].moved,
            "partitions": results[0].partitions,
            "items": run.item_count,
            "rss_before_export_mb": rss_before,
            **out,
        }
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=SIZES, default="S")
    parser.add_argument("--workers", type=int, default=2, help="concurrent settlement workers (default 2)")
    parser.add_argument(
        "--partitions", type=int, default=None, help="settlement partitions (default: by size)"
    )
    args = parser.parse_args()
    commissions, distributors = SIZES[args.size]
    with scratch_database(f"bench_settle_{secrets.token_hex(2)}") as url:
        gen = generate(url, commissions, distributors)
        print(
            f"generated {commissions:,} commissions over {distributors:,} distributors in "
            f"{sum(gen.values()):.1f}s {gen}",
            flush=True,
        )
        base_url = clone(url)
        try:
            base = baseline(base_url)
        finally:
            drop(base_url)
        print(
            f"baseline: status move {base['settlement']:.2f}s ({base['moved']:,} rows), "
            f"payout totals {base['payout']:.2f}s ({base['items']:,} items)",
            flush=True,
        )
        mine = asyncio.run(ours(url, args.workers, args.partitions))
        print(
            f"ours ({args.workers} workers, {mine['partitions']} partitions): settlement {mine['settlement']:.2f}s "
            f"({mine['moved']:,} available), payout run {mine['payout']:.2f}s ({mine['items']:,} items); "
            f"export csv {mine['export_csv_seconds']:.2f}s, xlsx {mine['export_xlsx_seconds']:.2f}s",
            flush=True,
        )
    seconds = mine["settlement"] + mine["payout"]
    baseline_seconds = base["settlement"] + base["payout"]
    emit(
        {
            "name": "settlement",
            "size": args.size,
            "commissions": commissions,
            "distributors": distributors,
            "workers": args.workers,
            "partitions": mine["partitions"],
            "seconds": round(seconds, 3),
            "baseline_seconds": round(baseline_seconds, 3),
            "ratio": round(seconds / baseline_seconds, 3),
            "settlement_seconds": round(mine["settlement"], 3),
            "baseline_settlement_seconds": round(base["settlement"], 3),
            "payout_seconds": round(mine["payout"], 3),
            "baseline_payout_seconds": round(base["payout"], 3),
            "items": mine["items"],
            "export_csv_seconds": round(mine["export_csv_seconds"], 3),
            "export_xlsx_seconds": round(mine["export_xlsx_seconds"], 3),
            "rss_before_export_mb": round(mine["rss_before_export_mb"], 1),
        }
    )


if __name__ == "__main__":
    main()
