"""Local mode as an operator meets it: a fresh data directory, no server URLs. ``keys create``
works before, during and after ``serve`` (whichever command needs the database first starts and
migrates it, under one lock), keys are listed and revoked, and ``local status|stop`` report and
stop the embedded servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg

from distnet.kit.embedded import stop_embedded
from distnet.kit.liveserver import free_port
from distnet.migrate import head_revision


def distnet(data_dir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distnet", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISTNET_DATABASE_URL", "DISTNET_REDIS_URL")}
    return {**env, "DISTNET_DATA_DIR": str(data_dir)}


def create_key(data_dir: Path, *roles: str) -> str:
    out = distnet(data_dir, "keys", "create", *[a for r in roles for a in ("--role", r)], "--name", "ops")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def status(data_dir: Path) -> dict[str, str]:
    out = distnet(data_dir, "local", "status")
    assert out.returncode == 0, out.stderr
    return {line.split()[0]: line for line in out.stdout.splitlines()[1:]}


def test_keys_before_during_and_after_serve_on_a_fresh_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    try:
        assert "stopped" in status(data_dir)["postgresql"]
        before = create_key(data_dir, "admin")  # the first command: starts and migrates the database
        pg = status(data_dir)["postgresql"]
        assert "running" in pg, pg
        url = pg.split(", ")[-1]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "distnet", "serve", "--port", str(port), "--no-workers"],
            env=_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if http.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                    time.sleep(0.3)
                during = create_key(data_dir, "risk_admin")
                for key in (before, during):
                    answer = http.get("/api/v1/risk/rules", headers={"Authorization": f"Bearer {key}"})
                    assert answer.status_code == 200, answer.text
        finally:
            server.terminate()
            server.communicate(timeout=60)

        after = create_key(data_dir, "finance")
        listed = distnet(data_dir, "keys", "list")
        assert listed.returncode == 0, listed.stderr
        rows = [line.split() for line in listed.stdout.splitlines()[1:]]
        assert [(r[0], r[2]) for r in rows] == [("1", "admin"), ("2", "risk_admin"), ("3", "finance")]

        revoked = distnet(data_dir, "keys", "revoke", "2")
        assert revoked.returncode == 0 and "key 2 revoked" in revoked.stdout, revoked.stderr
        assert [line.split()[0] for line in distnet(data_dir, "keys", "list").stdout.splitlines()[1:]] == [
            "1",
            "3",
        ]
        assert len(distnet(data_dir, "keys", "list", "--all").stdout.splitlines()) == 4
        unknown = distnet(data_dir, "keys", "revoke", "99")
        assert unknown.returncode == 1 and "no API key 99" in unknown.stderr
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM api_key WHERE revoked_at IS NULL").fetchone()
        assert stored == (2,) and after

        assert "running" in status(data_dir)["redis"]  # serve started it
        stopped = distnet(data_dir, "local", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert all("stopped" in line for line in status(data_dir).values())
    finally:
        stop_embedded(data_dir)
