"""Shared helpers for the scripts: scratch databases, peak RSS, percentiles."""

from __future__ import annotations

import json
import os
import resource
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from distnet.db import normalize_url
from distnet.kit.embedded import create_database, drop_database
from distnet.migrate import upgrade

SIZES = {"S": 10_000, "M": 100_000, "L": 1_000_000}


def server_url() -> str:
    url = os.environ.get("DISTNET_DATABASE_URL")
    if url:
        return normalize_url(url)
    from distnet.kit.embedded import ensure_postgres
    from distnet.settings import get_settings

    return normalize_url(ensure_postgres(get_settings().data_dir))


@contextmanager
def scratch_database(prefix: str, keep: bool = False) -> Iterator[str]:
    """A migrated database of its own, dropped afterwards unless ``keep`` (or DISTNET_BENCH_KEEP=1,
    to look at what a run wrote: its name goes to stderr)."""
    admin = server_url()
    name = f"{prefix}_{secrets.token_hex(3)}"
    keep = keep or os.environ.get("DISTNET_BENCH_KEEP") == "1"
    if keep:
        print(f"scratch database {name} (kept)", file=sys.stderr)
    url = create_database(admin, name)
    upgrade(url)
    try:
        yield url
    finally:
        if not keep:
            drop_database(admin, name)


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def emit(result: dict) -> None:
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    print(json.dumps(result))
