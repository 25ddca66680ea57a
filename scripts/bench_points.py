"""The monthly points grant and points expiry at scale, next to the same run's raw-SQL baseline.

    uv run python scripts/bench_points.py [--members 1000000]

Builds ``--members`` members set-based in a scratch database on the server of
DISTNET_DATABASE_URL (ranks 50% member, 30% silver, 15% gold, 5% platinum; their PTS accounts;
1% under a violation hold, 1% with a points debt), copies it (CREATE DATABASE ... TEMPLATE) for
the baseline, then times:

* ours: ``points.service.grant_monthly`` (one statement: lots, debt netting, holds, one balanced
  ledger transaction), the same grant again (pays nothing), then ``points.service.expire_due``
  after every lot's expiry has passed (lock statement + one expiry statement);
* baseline: ``points.repository.GRANT_BASELINE`` / ``EXPIRE_BASELINE``, the same lots and postings
  as bare INSERT … SELECT / UPDATE statements (no holds, no debt, no account opening).

Both databases are dropped at the end. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit, plain, scratch_database, server_url  # noqa: E402

from distnet.db import make_engine, make_sessionmaker, session_scope  # noqa: E402
from distnet.kit.embedded import drop_database  # noqa: E402
from distnet.ledger.verify import verify  # noqa: E402
from distnet.points import repository as repo  # noqa: E402
from distnet.points import service  # noqa: E402
from distnet.settings import BusinessSettings, DatabaseSettings, RedisSettings, Settings  # noqa: E402

PERIOD = "2026-12"


def generate(url: str, members: int) -> float:
    t = time.perf_counter()
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute("SELECT setseed(0.18)")
        conn.execute(
            """INSERT INTO distributor (id, code, name, depth, path, rank)
               SELECT i, 'P' || lpad(i::text, 9, '0'), 'Bench member ' || i, 0, text2ltree(i::text),
                      CASE WHEN i %% 20 = 0 THEN 'platinum' WHEN i %% 20 < 4 THEN 'gold'
                           WHEN i %% 20 < 10 THEN 'silver' ELSE 'member' END
                 FROM generate_series(1, %s) i""",
            (members,),
        )
        conn.execute(
            "INSERT INTO ledger_account (distributor_id, kind, currency, balance) "
            "SELECT i, k, 'PTS', 0 FROM generate_series(1, %s) i, unnest(ARRAY['points', 'points_owed']) k",
            (members,),
        )
        conn.execute(
            "INSERT INTO card (number, distributor_id) SELECT 'C' || i, i FROM generate_series(1, %s) i "
            "WHERE i %% 100 = 7",
            (members,),
        )
        conn.execute(
            "INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key) "
            "SELECT distributor_id, id, 'manual', 'actor', 'bench' FROM card"
        )
        # a points debt of 50 for 1%, as a refund leaves it: 50 points earned and redeemed, then the
        # order refunded (the lot reversed, the spent points owed); the net postings in one transaction
        conn.execute(
            "INSERT INTO points_lot (distributor_id, source, source_ref, amount, remaining, reversed, expires_at) "
            "SELECT i, 'order', 'bench', 50, 0, 50, now() + interval '1 year' FROM generate_series(1, %s) i "
            "WHERE i %% 100 = 3",
            (members,),
        )
        conn.execute(
            "INSERT INTO points_spend (distributor_id, kind, idempotency_key, request_hash, points, purpose) "
            "SELECT distributor_id, 'redemption', 'bench', '\\x00', 50, 'gift' FROM points_lot"
        )
        conn.execute(
            "INSERT INTO points_lot_use (spend_id, lot_id, points) SELECT s.id, l.id, 50 "
            "FROM points_spend s JOIN points_lot l ON l.distributor_id = s.distributor_id"
        )
        conn.execute("""
            WITH t AS (INSERT INTO ledger_transaction (kind) VALUES ('points.bench_debt') RETURNING id)
            INSERT INTO ledger_posting (transaction_id, account_id, amount)
            SELECT t.id, a.id, -50 FROM t, ledger_account a
             WHERE a.kind = 'points_owed' AND a.currency = 'PTS' AND a.distributor_id IN (SELECT distributor_id
                                                                                          FROM points_lot)
            UNION ALL
            SELECT t.id, (SELECT id FROM ledger_account WHERE distributor_id IS NULL AND kind = 'points_redeemed'),
                   (SELECT 50 * count(*) FROM points_lot) FROM t""")
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - t


def copy_database(url: str) -> str:
    admin = plain(server_url())
    source = url.rsplit("/", 1)[1]
    target = source + "_base"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source))
        )
    return url.rsplit("/", 1)[0] + "/" + target


async def ours(url: str, settings: Settings) -> dict[str, float | int | str]:
    engine = make_engine(url, pool_size=2)
    maker = make_sessionmaker(engine)
    out: dict[str, float | int | str] = {}
    t = time.perf_counter()
    async with session_scope(maker) as s:
        grant = await service.grant_monthly(s, settings=settings, period=PERIOD)
    out["grant_s"] = round(time.perf_counter() - t, 2)
    out["granted_members"], out["granted_points"] = grant["members"], grant["points"]
    t = time.perf_counter()
    async with session_scope(maker) as s:
        again = await service.grant_monthly(s, settings=settings, period=PERIOD)
    out["grant_again_s"] = round(time.perf_counter() - t, 2)
    out["grant_again_members"] = again["members"]
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute("UPDATE points_lot SET expires_at = now() - interval '1 second'")
        conn.execute("VACUUM ANALYZE points_lot")
    t = time.perf_counter()
    async with session_scope(maker) as s:
        expired = await service.expire_due(s, settings=settings)
    out["expire_s"] = round(time.perf_counter() - t, 2)
    out["expired_lots"], out["expired_points"] = expired["lots"], expired["points"]
    async with session_scope(maker) as s:
        report = await verify(s)
    out["verify_ok"] = int(report.ok)
    out["verify_failed"] = ",".join(c.name for c in report.checks if not c.ok) or "-"
    await engine.dispose()
    return out


def baseline(url: str) -> dict[str, float]:
    out = {}
    with psycopg.connect(plain(url), autocommit=True) as conn:
        t = time.perf_counter()
        with conn.transaction():
            conn.execute(str(repo.GRANT_BASELINE.text).replace(":period", "%(period)s"), {"period": PERIOD})
        out["grant_s"] = round(time.perf_counter() - t, 2)
        conn.execute("UPDATE points_lot SET expires_at = now() - interval '1 second'")
        conn.execute("VACUUM ANALYZE points_lot")
        t = time.perf_counter()
        with conn.transaction():
            conn.execute(str(repo.EXPIRE_BASELINE.text))
        out["expire_s"] = round(time.perf_counter() - t, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    args = parser.parse_args()
    load = os.getloadavg()
    with scratch_database("bench_points") as url:
        settings = Settings(
            data_dir=Path("/tmp"),
            secret_key=b"bench",
            database=DatabaseSettings(url=url),
            redis=RedisSettings(url=os.environ.get("DISTNET_REDIS_URL", "redis://127.0.0.1:6379/0")),
            business=BusinessSettings(),
        )
        gen_s = generate(url, args.members)
        base_url = copy_database(url)
        try:
            base = baseline(base_url)
        finally:
            drop_database(server_url(), base_url.rsplit("/", 1)[1])
        result = asyncio.run(ours(url, settings))
    print(f"members {args.members:,}  generate {gen_s:.1f} s  load average at start {load[0]:.1f}")
    print(f"{'step':<22}{'ours':>10}{'baseline':>10}")
    print(f"{'monthly grant':<22}{result['grant_s']:>9}s{base['grant_s']:>9}s")
    print(f"{'grant again (no-op)':<22}{result['grant_again_s']:>9}s{'':>10}")
    print(f"{'expiry':<22}{result['expire_s']:>9}s{base['expire_s']:>9}s")
    emit(
        {
            "bench": "points",
            "members": args.members,
            "generate_s": round(gen_s, 1),
            "ours": result,
            "baseline": base,
            "load_average_start": round(load[0], 2),
            "load_average_end": round(os.getloadavg()[0], 2),
        }
    )


if __name__ == "__main__":
    main()
