"""Network read latencies on a generated network: upline of the deepest chain's leaf, the first
downline page and the team stats of the largest team (the hub), each through the service layer
and over HTTP on loopback, next to the raw SQL query of the same run (the baseline).

    uv run python scripts/bench_network.py --size S|M|L [--iterations 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
import logging  # noqa: E402

from _common import SIZES, emit, percentile, plain, scratch_database  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)
from gen_network import build, load  # noqa: E402

from distnet.app import create_app  # noqa: E402
from distnet.db import make_engine, make_sessionmaker  # noqa: E402
from distnet.kit.auth import SYSTEM, hash_key, new_key  # noqa: E402
from distnet.kit.liveserver import serve_in_thread  # noqa: E402
from distnet.network import repository, service  # noqa: E402
from distnet.settings import DatabaseSettings, RedisSettings, Settings  # noqa: E402

RAW = {
    "upline": """SELECT c.ancestor_id, d.code, c.depth FROM distributor_closure c
                   JOIN distributor d ON d.id = c.ancestor_id WHERE c.descendant_id = %(id)s ORDER BY c.depth LIMIT 50""",
    "downline_page": """SELECT d.id, d.code, c.depth, d.rank, d.joined_at FROM distributor_closure c
                   JOIN distributor d ON d.id = c.descendant_id WHERE c.ancestor_id = %(id)s
                  ORDER BY c.depth, c.descendant_id LIMIT 50""",
    # the endpoint's query: the maintained aggregate (folded rows plus unfolded deltas)
    "team_stats": """SELECT depth, sum(members), sum(sales)
                       FROM (SELECT depth, members, sales FROM team_level WHERE ancestor_id = %(id)s
                             UNION ALL SELECT depth, members, sales FROM team_level_delta WHERE ancestor_id = %(id)s) t
                      GROUP BY depth HAVING sum(members) > 0 ORDER BY depth""",
    # what it replaces (issue 19): counting the team's closure rows per level, an index-only scan
    "team_recount": """SELECT depth, count(*) FROM distributor_closure WHERE ancestor_id = %(id)s GROUP BY depth""",
}


UNFOLDED = 6_000


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50) * 1000, 3),
        "p99_ms": round(percentile(samples, 99) * 1000, 3),
    }


def bench_raw(url: str, ids: dict[str, int], n: int) -> dict[str, dict[str, float]]:
    out = {}
    with psycopg.connect(plain(url)) as conn:
        for name, sql in RAW.items():
            target = ids["leaf"] if name == "upline" else ids["hub"]
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                conn.execute(sql, {"id": target}).fetchall()
                samples.append(time.perf_counter() - t)
            out[name] = _ms(samples)
        # the same read behind a backlog of unfolded credits: 30 s of 200 orders/s in the hub's
        # team between two runs of the fold_team job (each order appends one row per ancestor)
        conn.execute(
            "INSERT INTO team_level_delta (ancestor_id, depth, members, sales)"
            " SELECT %(id)s, 1 + g %% 5, 0, 100 FROM generate_series(1, %(n)s) g",
            {"id": ids["hub"], "n": UNFOLDED},
        )
        conn.commit()
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            conn.execute(RAW["team_stats"], {"id": ids["hub"]}).fetchall()
            samples.append(time.perf_counter() - t)
        out[f"team_stats_{UNFOLDED // 1000}k_unfolded"] = _ms(samples)
        conn.execute("DELETE FROM team_level_delta")
        conn.commit()
    return out


async def bench_service(url: str, ids: dict[str, int], n: int) -> dict[str, dict[str, float]]:
    engine = make_engine(url, pool_size=2)
    sm = make_sessionmaker(engine)
    calls = {
        "upline": lambda s: service.upline(s, principal=SYSTEM, distributor_id=ids["leaf"], limit=50),
        "downline_page": lambda s: service.downline(
            s, principal=SYSTEM, distributor_id=ids["hub"], max_depth=None, limit=50, cursor=None
        ),
        "team_stats": lambda s: repository.team_stats(s, ids["hub"]),
        "team_stats_with_sales": lambda s: service.team_stats(s, principal=SYSTEM, distributor_id=ids["hub"]),
    }
    out = {}
    async with sm() as session:
        for name, call in calls.items():
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                await call(session)
                samples.append(time.perf_counter() - t)
            out[name] = _ms(samples)
    await engine.dispose()
    return out


def bench_http(url: str, ids: dict[str, int], n: int) -> dict[str, dict[str, float]]:
    raw_key, prefix = new_key()
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO api_key (name, prefix, key_hash, roles) VALUES ('bench', %s, %s, ARRAY['admin'])",
            (prefix, hash_key(raw_key)),
        )
    settings = Settings(Path("/tmp/distnet-bench"), b"bench", DatabaseSettings(url), RedisSettings(None))
    redis_url = __import__("os").environ.get("DISTNET_REDIS_URL", "redis://127.0.0.1:6379/0")
    app = create_app(settings, database_url=url, redis_url=redis_url)
    paths = {
        "upline": f"/api/v1/distributors/{ids['leaf']}/upline",
        "downline_page": f"/api/v1/distributors/{ids['hub']}/downline?limit=50",
        "team_stats": f"/api/v1/distributors/{ids['hub']}/team-stats",
    }
    out = {}
    with (
        serve_in_thread(app) as base_url,
        httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {raw_key}"}) as client,
    ):
        for name, path in paths.items():
            samples = []
            for _ in range(n):
                t = time.perf_counter()
                resp = client.get(path)
                samples.append(time.perf_counter() - t)
                assert resp.status_code == 200, resp.text
            out[name] = _ms(samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=SIZES, default="S")
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    net = build(SIZES[args.size])
    with scratch_database(f"distnet_bench_net_{args.size.lower()}") as url:
        load_timings = load(url, net)
        ids = {"hub": net.hub_id, "leaf": net.chain_leaf_id}
        with psycopg.connect(plain(url)) as conn:
            team = conn.execute(
                "SELECT count(*) FROM distributor_closure WHERE ancestor_id = %s", (ids["hub"],)
            ).fetchone()[0]
        raw = bench_raw(url, ids, args.iterations)
        svc = asyncio.run(bench_service(url, ids, args.iterations))
        http = bench_http(url, ids, args.iterations)
    print(
        f"network {args.size}: {SIZES[args.size]:,} distributors loaded in {load_timings['total_s']:.1f}s; "
        f"hub team {team:,}; chain leaf depth {int(net.depth[ids['leaf']])}"
    )
    print(f"{'query':24} {'raw p50/p99 ms':>18} {'service p50/p99 ms':>20} {'http p50/p99 ms':>18}")
    for name in {**raw, **svc}:
        r, s_, h = raw.get(name, {}), svc.get(name, {}), http.get(name, {})
        fmt = lambda d: f"{d.get('p50_ms', float('nan')):.2f}/{d.get('p99_ms', float('nan')):.2f}"  # noqa: E731
        print(f"{name:24} {fmt(r):>18} {fmt(s_):>20} {fmt(h):>18}")
    worst = max(http.values(), key=lambda d: d["p99_ms"])
    emit(
        {
            "name": "bench_network",
            "size": args.size,
            "team_size": team,
            "load_seconds": round(load_timings["total_s"], 2),
            "raw": raw,
            "service": svc,
            "http": http,
            "p50_ms": worst["p50_ms"],
            "p99_ms": worst["p99_ms"],
            "baseline_p50_ms": max(d["p50_ms"] for d in raw.values()),
        }
    )


if __name__ == "__main__":
    main()
