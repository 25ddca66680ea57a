"""Generate a realistic synthetic distributor network and load it with COPY.

Shape: a random referral forest whose recruit counts follow a power law (node i picks its sponsor
among earlier nodes with probability skewed to the oldest), plus two skewed shapes every real
network ends up with: one chain 1,000 deep and one "hub" distributor with 100k direct recruits
(size//10 at the smaller sizes). Loads distributors, the closure table, bounded uplines, the team
aggregate (``team_level``), cards and, with --accounts, the ledger accounts. The closure, uplines,
team levels and cards are built with numpy (the closure already in key order) and sent as binary
COPY; the closure, uplines and team levels frozen (COPY FREEZE into tables truncated in the same
transaction: no VACUUM pass). Keys and indexes are dropped during the load and rebuilt after it on
two connections with in-memory sorts; foreign keys are checked once at the end instead of per row.

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
    return Network(
        size, parent, depth, hub_id, int(chain_ids[-1]) if len(chain_ids) else 1, int((parent[1:] == 0).sum())
    )


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


BULK_TABLES = (
    "distributor",
    "card",
    "ledger_account",
    "distributor_closure",
    "distributor_upline",
    "team_level",
)
FROZEN_TABLES = ("distributor_closure", "distributor_upline", "team_level")
"""Referenced by no foreign key: truncated in the load's transaction, so COPY FREEZE writes their rows
already frozen and all-visible (no VACUUM pass over 9M rows before index-only scans work)."""
PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
PGCOPY_TRAILER = b"\xff\xff"


def closure_rows(net: Network) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full closure (ancestor, depth, descendant) in primary-key order, built with numpy one
    level at a time (every node's k-th ancestor is its (k-1)-th ancestor's parent): sorted input
    makes the key's index build a single pass."""
    parent = net.parent
    cur = np.flatnonzero(parent).astype(np.int64)  # ids with a sponsor (parent[0] = 0 is unused)
    anc = parent[cur]
    ancestors, depths, descendants = [], [], []
    level = 1
    while len(cur):
        ancestors.append(anc)
        depths.append(np.full(len(cur), level, np.int64))
        descendants.append(cur)
        anc = parent[anc]
        keep = anc != 0
        cur, anc = cur[keep], anc[keep]
        level += 1
    id_bits, depth_bits = int(net.size).bit_length(), int(level).bit_length()
    assert 2 * id_bits + depth_bits < 63
    key = (
        (np.concatenate(ancestors) << (depth_bits + id_bits))
        | (np.concatenate(depths) << id_bits)
        | np.concatenate(descendants)
    )
    del ancestors, depths, descendants
    key.sort()
    id_mask = (1 << id_bits) - 1
    return key >> (depth_bits + id_bits), (key >> id_bits) & ((1 << depth_bits) - 1), key & id_mask


def team_levels(ancestor: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ancestor, depth) -> members from the sorted closure: the team aggregate (``team_level``);
    a generated network has no orders, so every level's sales are 0."""
    starts = np.flatnonzero(np.r_[True, (np.diff(ancestor) != 0) | (np.diff(depth) != 0)])
    return ancestor[starts], depth[starts], np.diff(np.r_[starts, len(ancestor)])


def codes(n: int) -> list[str]:
    """``_code`` of ids 1..n, vectorised."""
    x = (np.arange(1, n + 1, dtype=np.int64) * 2_654_435_761) % 656_100_000_000
    alphabet = np.frombuffer(CODE_ALPHABET.encode(), np.uint8)
    out = np.empty((n, 8), np.uint8)
    for j in range(8):
        out[:, j] = alphabet[x % 30]
        x //= 30
    return out.view("S8").ravel().astype("U8").tolist()


def card_numbers(n: int) -> np.ndarray:
    """``_card`` of ids 1..n, vectorised: "62", the id in 13 digits, the Luhn digit (as bytes)."""
    digits = np.empty((n, 15), np.int64)
    digits[:, 0], digits[:, 1] = 6, 2
    x = np.arange(1, n + 1, dtype=np.int64)
    for pos in range(14, 1, -1):
        digits[:, pos] = x % 10
        x //= 10
    doubled = digits[:, ::2] * 2  # positions 0, 2, ..., 14: every other digit from the right end
    total = (doubled - 9 * (doubled > 9)).sum(axis=1) + digits[:, 1::2].sum(axis=1)
    out = np.empty((n, 16), np.uint8)
    out[:, :15] = digits + ord("0")
    out[:, 15] = (10 - total % 10) % 10 + ord("0")
    return out.view("S16").ravel()


def copy_binary(
    conn: psycopg.Connection, statement: str, columns: list[tuple[str, np.ndarray]], chunk: int = 1 << 20
) -> None:
    """COPY fixed-width columns in PostgreSQL's binary format, each chunk of rows one numpy
    record array (big-endian field count, then length and value per column): no per-row Python."""
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, (kind, _) in enumerate(columns):
        fields += [(f"l{i}", ">i4"), (f"v{i}", kind)]
    dtype = np.dtype(fields)
    total = len(columns[0][1])
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(PGCOPY_HEADER)
        for lo in range(0, total, chunk):
            hi = min(total, lo + chunk)
            rows = np.empty(hi - lo, dtype)
            rows["n"] = len(columns)
            for i, (kind, values) in enumerate(columns):
                rows[f"l{i}"] = np.dtype(kind).itemsize
                rows[f"v{i}"] = values[lo:hi]
            copy.write(rows.tobytes())
        copy.write(PGCOPY_TRAILER)


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


# Rows per generated distributor, and whether an index's leading column arrives sorted (a single
# pass instead of a sort): the weights that share the rebuilds between the connections.
_ROWS = {
    "distributor_closure": 5.2,
    "distributor_upline": 3.0,
    "team_level": 1.2,
    "distributor": 1.0,
    "card": 1.0,
    "ledger_account": 8.0,
}
_SORTED = (
    "(ancestor_id, depth, descendant_id)",
    "(distributor_id, level)",
    "(ancestor_id, depth)",
    "PRIMARY KEY (id)",
    "(number)",
)


def _weight(definition: str) -> float:
    table = next(
        (
            t
            for t in sorted(_ROWS, key=len, reverse=True)
            if f" {t} " in f"{definition} " or f"ON public.{t} " in definition or f"TABLE {t} " in definition
        ),
        "distributor",
    )
    return _ROWS[table] * (1.0 if any(s in definition for s in _SORTED) else 2.5)


def _no_wal_compression(conn: psycopg.Connection) -> None:
    """An index build logs every page it writes whole; a tuned server's ``wal_compression``
    (pglz) would compress each of them on a core the other build needs. A bulk load's session
    turns it off when it may (superuser)."""
    try:
        with conn.transaction():
            conn.execute("SET wal_compression = off")
    except psycopg.errors.InsufficientPrivilege:
        pass


INDEX_SECONDS: dict[str, float] = {}
"""Each rebuild's seconds in the last load (printed with --verbose)."""


def _rebuild_indexes(url: str, definitions: list[str], connections: int = 2, work_mem: str = "1GB") -> None:
    """Build the dropped keys and indexes on several connections at once (one per core), shared by
    estimated cost (rows, and whether the input is already sorted), largest first; each sort in
    memory (``maintenance_work_mem``) without parallel workers, the cores being taken."""
    from concurrent.futures import ThreadPoolExecutor

    shares: list[list[str]] = [[] for _ in range(connections)]
    loads = [0.0] * connections
    for definition in sorted(definitions, key=_weight, reverse=True):
        i = loads.index(min(loads))
        shares[i].append(definition)
        loads[i] += _weight(definition)

    def build(statements: list[str]) -> None:
        with psycopg.connect(plain(url), autocommit=True) as conn:
            conn.execute(f"SET maintenance_work_mem = '{work_mem}'")
            conn.execute("SET max_parallel_maintenance_workers = 0")
            _no_wal_compression(conn)
            for statement in statements:
                t = time.perf_counter()
                conn.execute(statement)
                INDEX_SECONDS[statement] = time.perf_counter() - t

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
        # triggers and the team aggregate's statement triggers (replica role); referential
        # integrity is checked once at the end and the aggregate is loaded with the closure.
        conn.execute("SET session_replication_role = replica")
        _no_wal_compression(conn)
        t0 = time.perf_counter()
        index_definitions = _drop_indexes(conn)
        conn.execute(f"TRUNCATE {', '.join(FROZEN_TABLES)}")
        parent, depth = net.parent.tolist(), net.depth.tolist()
        paths: list[str] = [""] * (n + 1)
        for i in range(1, n + 1):
            p = parent[i]
            paths[i] = f"{paths[p]}.{i}" if p else str(i)
        sponsors = [str(p) if p else "\\N" for p in parent]
        lines = "".join(
            f"{i}\t{code}\tDistributor {i}\t{p}\t{d}\t{path}\t{rank}\t{region}\n"
            for i, code, p, d, path, rank, region in zip(
                range(1, n + 1),
                codes(n),
                sponsors[1:],
                depth[1:],
                paths[1:],
                ranks[1:].tolist(),
                regions[1:].tolist(),
                strict=True,
            )
        ).encode()
        del paths, sponsors
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY distributor (id, code, name, sponsor_id, depth, path, rank, region) FROM STDIN"
            ) as copy,
        ):
            view = memoryview(lines)
            for lo in range(0, len(lines), 1 << 23):
                copy.write(view[lo : lo + (1 << 23)])
        del lines, view
        timings["distributors_s"] = time.perf_counter() - t0
        t1b = time.perf_counter()
        ancestor, level, descendant = closure_rows(net)
        copy_binary(
            conn,
            "COPY distributor_closure (ancestor_id, depth, descendant_id) FROM STDIN (FORMAT BINARY, FREEZE)",
            [(">i8", ancestor), (">i2", level), (">i8", descendant)],
        )
        timings["closure_s"] = time.perf_counter() - t1b
        t1c = time.perf_counter()
        team_ancestor, team_depth, members = team_levels(ancestor, level)
        copy_binary(
            conn,
            "COPY team_level (ancestor_id, depth, members, sales) FROM STDIN (FORMAT BINARY, FREEZE)",
            [
                (">i8", team_ancestor),
                (">i2", team_depth),
                (">i8", members),
                (">i8", np.zeros(len(members), np.int64)),
            ],
        )
        timings["team_levels_s"] = time.perf_counter() - t1c
        t1 = time.perf_counter()
        near = level <= 3
        order = np.lexsort((level[near], descendant[near]))  # primary key order (distributor, level)
        copy_binary(
            conn,
            "COPY distributor_upline (distributor_id, level, ancestor_id) FROM STDIN (FORMAT BINARY, FREEZE)",
            [(">i8", descendant[near][order]), (">i2", level[near][order]), (">i8", ancestor[near][order])],
        )
        del ancestor, level, descendant, near, order
        timings["upline_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        copy_binary(
            conn,
            "COPY card (number, distributor_id) FROM STDIN (FORMAT BINARY)",
            [("S16", card_numbers(n)), (">i8", np.arange(1, n + 1, dtype=np.int64))],
        )
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
        for table in FROZEN_TABLES:  # written frozen and all-visible: statistics only
            conn.execute(f"ANALYZE {table}")
        conn.execute("ANALYZE card")
        timings["analyze_s"] = time.perf_counter() - t4
        timings["total_s"] = time.perf_counter() - t0
    return timings


def copy_baseline(url: str, net: Network) -> float:
    """Same-run baseline: a plain binary COPY of the same distributor rows into an unindexed table."""
    with psycopg.connect(plain(url)) as conn:
        conn.execute(
            "CREATE TEMP TABLE baseline_distributor (id bigint, code text, name text, sponsor_id bigint,"
            " depth int, path text)"
        )
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=SIZES, default="S")
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    parser.add_argument(
        "--accounts", action="store_true", help="also open the 6 ledger accounts per distributor"
    )
    parser.add_argument("--verbose", action="store_true", help="print each index rebuild's seconds")
    args = parser.parse_args()
    size = SIZES[args.size]
    t0 = time.perf_counter()
    net = build(size)
    build_s = time.perf_counter() - t0
    with scratch_database(f"distnet_gen_{args.size.lower()}", keep=args.keep) as url:
        timings = load(url, net, accounts=args.accounts)
        baseline = copy_baseline(url, net)
        if args.verbose:
            for statement, seconds in sorted(INDEX_SECONDS.items(), key=lambda kv: -kv[1]):
                print(f"{seconds:6.2f}s  {statement}", file=sys.stderr)
        if args.keep:
            print(f"database: {url}", file=sys.stderr)
    print(
        f"built {size:,} distributors in {build_s:.1f}s (max depth {int(net.depth.max())}, "
        f"hub {net.hub_id}, {net.roots} roots); loaded in {timings['total_s']:.1f}s"
    )
    emit(
        {
            "name": "gen_network",
            "size": args.size,
            "distributors": size,
            "build_seconds": round(build_s, 2),
            **{k: round(v, 2) for k, v in timings.items()},
            "seconds": round(timings["total_s"], 2),
            "baseline_seconds": round(baseline, 2),
            "ratio": round(timings["distributors_s"] / baseline, 2),
        }
    )


if __name__ == "__main__":
    main()
