"""The operator's command line, run as the operator runs it: a subprocess with env URLs."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from distnet.kit.auth import hash_key


def distnet(
    *args: str, database_url: str, redis_url: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISTNET_DATABASE_URL": database_url, "DISTNET_REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "distnet.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_help_lists_the_operator_commands(database_url, redis_url):
    out = distnet("--help", database_url=database_url, redis_url=redis_url)
    assert out.returncode == 0, out.stderr
    for command in ("serve", "worker", "scheduler", "db", "keys", "demo"):
        assert f" {command} " in out.stdout, (command, out.stdout)


def test_keys_create_prints_the_key_as_last_line(database_url, redis_url):
    out = distnet(
        "keys",
        "create",
        "--role",
        "finance",
        "--role",
        "risk_admin",
        "--name",
        "ops",
        database_url=database_url,
        redis_url=redis_url,
    )
    assert out.returncode == 0, out.stderr
    raw = out.stdout.strip().splitlines()[-1]
    with psycopg.connect(
        database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        row = conn.execute("SELECT name, roles FROM api_key WHERE key_hash = %s", (hash_key(raw),)).fetchone()
    assert row == ("ops", ["finance", "risk_admin"])

    bad = distnet(
        "keys", "create", "--role", "emperor", "--name", "x", database_url=database_url, redis_url=redis_url
    )
    assert bad.returncode != 0


def test_db_upgrade_is_idempotent(database_url, redis_url):
    def revision() -> str:
        with psycopg.connect(
            database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        ) as c:
            return c.execute("SELECT version_num FROM alembic_version").fetchone()[0]

    before = revision()
    for _ in range(2):
        out = distnet("db", "upgrade", database_url=database_url, redis_url=redis_url)
        assert out.returncode == 0, out.stderr
        assert "database at head" in out.stdout
    assert revision() == before


def test_worker_command_processes_a_job_and_stops_on_sigterm(database_url, redis_url, redis_namespace):
    """`distnet worker` against real Redis: a worker.run_job message is consumed and run."""
    import signal
    import time

    from distnet.worker.broker import redis_broker

    env = {
        **os.environ,
        "DISTNET_DATABASE_URL": database_url,
        "DISTNET_REDIS_URL": redis_url,
        "DISTNET_BROKER": "redis",
        "DISTNET_BROKER_NAMESPACE": redis_namespace,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "distnet.cli", "worker", "--threads", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        sender = redis_broker(redis_url, namespace=redis_namespace)
        from dramatiq import Message

        message = Message(
            queue_name="jobs",
            actor_name="worker.run_job",
            args=("erase_personal_data",),
            kwargs={},
            options={},
        )
        sender.enqueue(message)
        deadline = time.monotonic() + 120
        while sender.client.hlen(f"{redis_namespace}:jobs.msgs") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sender.client.hlen(f"{redis_namespace}:jobs.msgs") == 0, "the worker did not consume the job"
        sender.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    # the job found nothing to erase, so it logs at DEBUG only (kit/logs.py); consumed is proven above
    assert "Traceback" not in output and "Failed to process" not in output, output
