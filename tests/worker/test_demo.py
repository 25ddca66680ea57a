"""`distnet demo` end to end, as an operator runs it: with service URLs, and in local mode."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import psycopg
import redis

from distnet.db import normalize_url


def _demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "distnet.cli", "demo", "--distributors", "25", "--orders", "40", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _demo_databases(admin_url: str) -> set[str]:
    with psycopg.connect(
        admin_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        return {
            r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'distnet_demo_%'")
        }


def _check_summary(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for line in (
        "distributors",
        "placed via POST /api/v1/orders",
        "commissions made available",
        "bank results (paid / failed)",
        "cases by rule",
        "relayed to the worker",
        "(verified by code)",
        "inbox notices by kind",
    ):
        assert line in text, (line, text)
    assert re.search(r"│ ledger +│ verify", text) and "FAILED" not in text, text
    assert "Traceback" not in out.stderr, out.stderr


def test_demo_with_service_urls_leaves_nothing_behind(database_url, redis_url):
    # other suites may run demos on the same servers at the same time: judge this demo's own
    # database (named in its first line) and its own Redis namespace, not every demo's
    admin = normalize_url(os.environ.get("DISTNET_DATABASE_URL") or database_url)
    namespace = f"distnet-demo-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "DISTNET_DATABASE_URL": admin,
        "DISTNET_REDIS_URL": redis_url,
        "DISTNET_BROKER_NAMESPACE": namespace,
    }
    out = _demo(env)
    _check_summary(out)
    created = re.search(r"database (distnet_demo_[0-9a-f]{8})", out.stdout)
    assert created, out.stdout
    assert created.group(1) not in _demo_databases(admin)
    assert not list(redis.Redis.from_url(redis_url).scan_iter(match=f"{namespace}*"))


def test_demo_in_local_mode_on_embedded_servers(tmp_path):
    from distnet.kit.embedded import stop_embedded

    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTNET_")}
    env["DISTNET_DATA_DIR"] = str(tmp_path / "data")
    try:
        _check_summary(_demo(env))
    finally:
        stop_embedded(tmp_path / "data")
