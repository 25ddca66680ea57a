"""Generate a realistic synthetic distributor network and load it with COPY.

Shape: a random referral forest whose recruit counts follow a power law (node i picks its sponsor
among earlier nodes with probability skewed to the oldest), plus two skewed shapes every real
network ends up with: one chain 1,000 deep and one "hub" distributor with 100k direct recruits
(size//10 at the smaller sizes). Loads distributors, the closure table, bounded uplines, cards and,
with --accounts, the ledger accounts. Keys and indexes are dropped during the load and rebuilt
after it; foreign keys are checked once at the end instead of per row.

    uv run python scripts/gen_network.py --size S            # into a scratch database, then drop it
    uv run python scripts/gen_network.py --size M --keep     # keep it; prints the URL
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from _common import SIZES, emit, plain, scratch_database  # noqa: E402

from distnet.network.codes import CODE_ALPHABET, luhn_digit  # noqa: E402

CHAIN_DEPTH = 1_000
HUB_RECRUITS = 100_000
RANKS = np.array(["member", "silver", "gold", "platinum"])
REGIONS = np.array(["north", "south", "east", "west", "central"])


@dataclass(frozen=True)
class Network:
    size: int
    parent: np.ndarray  # parent[i] for ids 1..n (index 0 unused); 0 = root
    depth: np.ndarray
    hub_id: int
    chain_leaf_id: int
    roots: int


def build(size: int, seed: int = 7) -> Network:
    rng = np.random.default_rng(seed)
    hub_recruits = min(HUB_RECRUITS, size // 10)
    chain = min(CHAIN_DEPTH, size // 10)
    base = size - hub_recruits - chain
    n = size
    parent = np.zeros(n + 1, dtype=np.int64)
    # power-law forest over the first `base` ids: sponsor index ~ i * u^3 (old nodes recruit more)
    ids = np.arange(2, base + 1)
    u = rng.random(base - 1)
    parent[2 : base + 1] = 1 + np.floor((ids - 2) * u**3).astype(np.int64)  # among ids 1..i-1
    parent[1] = 0
    roots_extra = rng.random(base) < 0.0005  # a few independent trees
    parent[1 : base + 1][roots_extra] = 0
    hub_id = 2 if base >= 2 else 1
    # the hub's direct recruits
    hub_ids = np.arange(base + 1, base + hub_recruits + 1)
    parent[hub_ids] = hub_id
    # one deep chain hanging off a random early node
    chain_ids = np.arange(base + hub_recruits + 1, n + 1)
    if len(chain_ids):
        parent[chain_ids[0]] = 3 if base >= 3 else 1
        parent[chain_ids[1:]] = chain_ids[:-1]
    depth = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):  # parents are always earlier ids, one pass suffices
        p = parent[i]
        depth[i] = depth[p] + 1 if p else 0
    return Network(size, parent, depth, hub_id, int(chain_ids[-1]) if len(chain_ids) else 1,
                   int((parent[1:] == 0).sum()))


def _code(i: int) -> str:
    # bijective base-30 of a scrambled id: unique without a collision check
    x = (i * 2_654_435_761) % 656_100_000_000  # 30**8 = 656,100,000,000
    out = []
    for _ in range(8):
        x, r = divmod(x, 30)
        out.append(CODE_ALPHABET[r])
    return "".join(out)


def _card(i: int) -> str:
    body = f"62{i:013d}"
    return body + luhn_digit(body)


BULK_TABLES = ("distributor", "card", "ledger_account", "distributor_closure", "distributor_upline")


def _drop_indexes(conn: psycopg.Connection) -> list[str]:
    """Drop the indexes and keys of the bulk-loaded tables (but keys that foreign keys depend on);
    return the statements that rebuild them."""
    keys = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
            WHERE c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('p', 'u')
              AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)""",
        (list(BULK_TABLES),),
    ).fetchall()
    indexes = conn.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.tablename = ANY(%s) AND NOT EXISTS (
                  SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)""",
        (list(BULK_TABLES),),
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    for table, name, _ in keys:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d in keys] + [d for _, d in indexes]


def _rebuild_indexes(url: str, definitions: list[str], connections: int = 2) -> None:
    """Build the dropped keys and indexes on several connections at once (one per core), largest
    tables first so the two long builds (closure key, closure descendant index) run side by side."""
    from concurrent.futures import ThreadPoolExecutor

    ordered = sorted(definitions, key=lambda d: "distributor_closure" not in d)

    def build(statements: list[str]) -> None:
        with psycopg.connect(plain(url), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    shares = [ordered[i::connections] for i in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        for future in [pool.submit(build, share) for share in shares]:
            future.result()


def load(url: str, net: Network, seed: int = 7, *, accounts: bool = False) -> dict[str, float]:
    rng = np.random.default_rng(seed + 1)
    n = net.size
    ranks = RANKS[np.minimum(rng.zipf(2.5, n + 1) - 1, 3)]
    regions = REGIONS[rng.integers(0, len(REGIONS), n + 1)]
    timings: dict[str, float] = {}
    with psycopg.connect(plain(url)) as conn:
        # Bulk load of generated, consistent-by-construction rows: skip the per-row foreign-key
        # triggers (replica role). Referential integrity is checked once at the end instead.
        conn.execute("SET session_replication_role = replica")
        t0 = time.perf_counter()
        index_definitions = _drop_indexes(conn)
        paths: list[str] = [""] * (n + 1)
        with conn.cursor() as cur, cur.copy(
            "COPY distributor (id, code, name, sponsor_id, depth, path, rank, region) FROM STDIN"
        ) as copy:
            parent, depth = net.parent, net.depth
            for i in range(1, n + 1):
                p = parent[i]
                path = f"{paths[p]}.{i}" if p else str(i)
                paths[i] = path
                copy.write_row((i, _code(i), f"Distributor {i}", p or None, int(depth[i]), path,
                                ranks[i], regions[i]))
        del paths
        timings["distributors_s"] = time.perf_counter() - t0
        t1b = time.perf_counter()
        conn.execute(
            """INSERT INTO distributor_closure (ancestor_id, depth, descendant_id)
               SELECT a.anc::bigint, d.depth - a.ord + 1, d.id
                 FROM distributor d,
                      unnest(string_to_array(ltree2text(d.path), '.')) WITH ORDINALITY AS a(anc, ord)
                WHERE a.ord <= d.depth"""
        )
        timings["closure_s"] = time.perf_counter() - t1b
        t1 = time.perf_counter()
        conn.execute(
            """INSERT INTO distributor_upline (distributor_id, level, ancestor_id)
               SELECT descendant_id, depth, ancestor_id FROM distributor_closure WHERE depth <= 3"""
        )
        timings["upline_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY card (number, distributor_id) FROM STDIN") as copy:
            for i in range(1, n + 1):
                copy.write_row((_card(i), i))
        timings["cards_s"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        if accounts:
            conn.execute(
                """INSERT INTO ledger_account (distributor_id, kind, currency, balance)
                   SELECT d, k, 'CNY', 0 FROM generate_series(1, %s) d,
                          unnest(ARRAY['pending','available','withheld','reserved','paid','owed']) k
                   UNION ALL  -- points (issue 18), as registration opens them
                   SELECT d, k, 'PTS', 0 FROM generate_series(1, %s) d, unnest(ARRAY['points','points_owed']) k""",
                (n, n),
            )
        timings["accounts_s"] = time.perf_counter() - t3
        conn.execute("SELECT setval(pg_get_serial_sequence('distributor','id'), %s)", (n,))
        conn.commit()
        t6 = time.perf_counter()
        _rebuild_indexes(url, index_definitions)
        timings["indexes_s"] = time.perf_counter() - t6
        t5 = time.perf_counter()
        orphans = conn.execute(
            """SELECT (SELECT count(*) FROM distributor d WHERE d.sponsor_id IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM distributor s WHERE s.id = d.sponsor_id))
                    + (SELECT count(*) FROM card c WHERE NOT EXISTS (SELECT 1 FROM distributor d
                        WHERE d.id = c.distributor_id))"""
        ).fetchone()[0]
        assert orphans == 0, f"{orphans} rows reference missing distributors"
        timings["integrity_check_s"] = time.perf_counter() - t5
        conn.commit()
        t4 = time.perf_counter()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE distributor")
        conn.execute("VACUUM ANALYZE distributor_upline")
        conn.execute("VACUUM ANALYZE distributor_closure")
        conn.execute("ANALYZE card")
        timings["analyze_s"] = time.perf_counter() - t4
        timings["total_s"] = time.perf_counter() - t0
    return timings


def copy_baseline(url: str, net: Network) -> float:
    """Same-run baseline: a plain binary COPY of the same distributor rows into an unindexed table."""
    with psycopg.connect(plain(url)) as conn:
        conn.execute("CREATE TEMP TABLE baseline_distributor (id bigint, code text, name text, sponsor_id bigint,"
                     " depth int, path text)")
        t0 = time.perf_counter()
        paths: list[str] = [""] * (net.size + 1)
        with conn.cursor() as cur, cur.copy("COPY baseline_distributor FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "text", "text", "int8", "int4", "text"])
            for i in range(1, net.size + 1):
                p = net.parent[i]
                paths[i] = path = f"{paths[p]}.{i}" if p else str(i)
                copy.write_row((i, _code(i), f"Distributor {i}", int(p) or None, int(net.depth[i]), path))
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="S")
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    parser.add_argument("--accounts", action="store_true", help="also open the 6 ledger accounts per distributor")
    args = parser.parse_args()
    size = SIZES[args.size]
    t0 = time.perf_counter()
    net = build(size)
    build_s = time.perf_counter() - t0
    with scratch_database(f"distnet_gen_{args.size.lower()}", keep=args.keep) as url:
        timings = load(url, net, accounts=args.accounts)
        baseline = copy_baseline(url, net)
        if args.keep:
            print(f"database: {url}", file=sys.stderr)
    print(f"built {size:,} distributors in {build_s:.1f}s (max depth {int(net.depth.max())}, "
          f"hub {net.hub_id}, {net.roots} roots); loaded in {timings['total_s']:.1f}s")
    emit({"name": "gen_network", "size": args.size, "distributors": size, "build_seconds": round(build_s, 2),
          **{k: round(v, 2) for k, v in timings.items()}, "seconds": round(timings["total_s"], 2),
          "baseline_seconds": round(baseline, 2), "ratio": round(timings["distributors_s"] / baseline, 2)})


if __name__ == "__main__":
    main()
