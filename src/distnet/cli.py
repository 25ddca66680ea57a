"""``distnet``: the operator's command line. Each domain adds its commands in ``<domain>/cli.py``."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.calendar import cli as calendar_cli
from distnet.db import resolve_database_url, resolve_redis_url
from distnet.kit.embedded import embedded_status, stop_embedded
from distnet.kit.keys import create_key, list_keys, revoke_key
from distnet.kit.logs import configure_logging
from distnet.kit.runner import run_command
from distnet.ledger import cli as ledger_cli
from distnet.migrate import upgrade
from distnet.models import ApiKey
from distnet.orders import cli as orders_cli
from distnet.payouts import cli as payouts_cli
from distnet.risk import cli as risk_cli
from distnet.settings import Settings, SettingsError, get_settings
from distnet.staff import cli as staff_cli
from distnet.worker import cli as worker_cli

PROMETHEUS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode (kit/metrics.py)

app = typer.Typer(help="distnet: distribution network backend", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
keys_app = typer.Typer(help="API keys", no_args_is_help=True)
local_app = typer.Typer(
    help="local mode: the embedded PostgreSQL and Redis of the data directory", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(local_app, name="local")


@app.callback()
def check_settings() -> None:
    """Every command starts by reading the DISTNET_* settings: a bad value stops it with one line."""
    try:
        get_settings()
    except SettingsError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (local mode starts the embedded PostgreSQL first)."""
    upgrade(resolve_database_url(get_settings()), revision)
    typer.echo(f"database at {revision}")


@db_app.command("recommend")
def db_recommend(
    memory: Annotated[
        str | None, typer.Option(help="the database machine's RAM, e.g. 64GB (default: this machine's)")
    ] = None,
    cores: Annotated[int | None, typer.Option(min=1, help="its cores (default: this machine's)")] = None,
    connections: Annotated[
        int, typer.Option(min=1, help="max_connections you will set (work_mem is shared by them)")
    ] = 100,
    ssd: Annotated[bool, typer.Option(help="--no-ssd for rotating disks (random_page_cost 4)")] = True,
    share: Annotated[
        float, typer.Option(min=0.05, max=1.0, help="share of the machine the server may use")
    ] = 1.0,
) -> None:
    """Print postgresql.conf settings for a database server: the rules the embedded server is tuned by."""
    from distnet.kit import pgtune

    here = pgtune.probe()
    machine = pgtune.Machine(
        memory=pgtune.parse_size(memory) if memory else here.memory, cores=cores or here.cores, ssd=ssd
    )
    typer.echo(pgtune.recommend(machine, share=share, max_connections=connections).conf(), nl=False)


@db_app.command("backup")
def db_backup(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="archive file to write (FILE.json gets the manifest)")
    ],
) -> None:
    """Back up the database (pg_dump custom format, one consistent snapshot; safe while serving)."""
    from distnet.backup import BackupError, backup

    try:
        manifest = backup(resolve_database_url(get_settings()), out)
    except BackupError as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{out}: {manifest.bytes:,} bytes in {manifest.seconds:.1f}s, snapshot after {manifest.snapshot_after}"
    )
    typer.echo("rows: " + ", ".join(f"{table} {n:,}" for table, n in manifest.rows.items()))


@db_app.command("restore")
def db_restore(
    archive: Annotated[Path, typer.Argument(help="archive written by `distnet db backup`")],
    database: Annotated[str, typer.Argument(help="name of the NEW database to create and restore into")],
    verify: Annotated[bool, typer.Option(help="run `ledger verify` on the restored database")] = True,
) -> None:
    """Restore an archive into a new database on the configured server, then check it."""
    from distnet.backup import BackupError, restore

    try:
        report = restore(archive, resolve_database_url(get_settings()), database, verify=verify)
    except BackupError as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored into {report.database} in {report.seconds:.1f}s; rows match the manifest")
    typer.echo("rows: " + ", ".join(f"{table} {n:,}" for table, n in report.rows.items()))
    if not report.ledger_ok:
        typer.echo(
            "ledger verify FAILED on the restored database:\n  " + "\n  ".join(report.failed_checks), err=True
        )
        raise typer.Exit(2)
    typer.echo("ledger verified" if verify else "ledger not verified (--no-verify)")


@keys_app.command("create")
def keys_create(
    role: Annotated[list[str], typer.Option("--role", help="role; repeat for several")],
    name: Annotated[str, typer.Option("--name")],
    distributor_id: Annotated[int | None, typer.Option("--distributor-id")] = None,
) -> None:
    """Create an API key; the key is printed once, as the last line."""

    async def create(session: AsyncSession, settings: Settings) -> tuple[int, list[str], str]:
        key, raw = await create_key(session, name=name, roles=role, distributor_id=distributor_id)
        return key.id, key.roles, raw

    key_id, roles, raw = run_command(create)
    typer.echo(f"key {key_id} '{name}' roles: {', '.join(roles)}")
    typer.echo("store it now: it is shown once")
    typer.echo(raw)


@keys_app.command("list")
def keys_list(
    all_keys: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
) -> None:
    """List API keys: id, name, roles, distributor, prefix (the key itself is never stored)."""

    async def listing(session: AsyncSession, settings: Settings) -> list[ApiKey]:
        return await list_keys(session, include_revoked=all_keys)

    table = Table("id", "name", "roles", "distributor", "prefix", "created", "revoked", box=None)
    for key in run_command(listing):
        table.add_row(
            str(key.id),
            key.name,
            ",".join(key.roles),
            str(key.distributor_id or ""),
            key.prefix,
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    Console(width=200).print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="the key's id (keys list)")]) -> None:
    """Revoke an API key. Running servers stop accepting it within a few seconds."""

    async def revoke(session: AsyncSession, settings: Settings) -> datetime:
        return await revoke_key(session, key_id=key_id)

    revoked_at = run_command(revoke)
    typer.echo(f"key {key_id} revoked at {revoked_at:%Y-%m-%d %H:%M:%S %Z}")


@local_app.command("status")
def local_status() -> None:
    """Whether the embedded PostgreSQL and Redis of DISTNET_DATA_DIR run (starts nothing)."""
    settings = get_settings()
    typer.echo(f"data directory {settings.data_dir}")
    for server in embedded_status(settings.data_dir):
        state = f"running, pid {server.pid}, {server.url}" if server.pid else "stopped"
        typer.echo(f"{server.name:<11} {state}")


@local_app.command("stop")
def local_stop() -> None:
    """Stop the embedded servers of DISTNET_DATA_DIR (a running `distnet serve` loses its database)."""
    settings = get_settings()
    stop_embedded(settings.data_dir)
    for server in embedded_status(settings.data_dir):
        typer.echo(f"{server.name:<11} {'still running' if server.pid else 'stopped'}")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        bool, typer.Option(help="run a worker and the scheduler in-process (default in local mode)")
    ] = None,  # type: ignore[assignment]
    processes: Annotated[
        int, typer.Option(min=1, help="server processes sharing the port (one per core)")
    ] = 1,
) -> None:
    """Serve the API. In local mode: embedded servers, migrations, in-process worker and scheduler."""
    import os

    import uvicorn

    from distnet.kit.serving import run_processes

    settings = get_settings()
    configure_logging()
    if settings.local_mode and settings.database.url:
        upgrade(settings.database.url)  # an embedded database is migrated as it is resolved
    in_process = settings.local_mode if workers is None else workers
    # the processes build the app from the environment (serve_app): pass what was resolved here,
    # so that every process talks to the same (possibly embedded) servers
    os.environ["DISTNET_DATABASE_URL"] = resolve_database_url(settings)
    os.environ["DISTNET_REDIS_URL"] = resolve_redis_url(settings)
    os.environ["DISTNET_SERVE_BACKGROUND"] = "1" if in_process else "0"
    with contextlib.ExitStack() as stack:
        if processes > 1 and not os.environ.get(PROMETHEUS_DIR):
            # one metrics directory for all server processes: /metrics in any of them sums them all
            os.environ[PROMETHEUS_DIR] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="distnet-metrics-")
            )
        # log_config=None: uvicorn's loggers go through the one configuration (kit/logs, set again
        # by serve_app in each server process)
        options: dict[str, Any] = {
            "factory": True,
            "host": host,
            "port": port,
            "log_level": "info",
            "log_config": None,
        }
        if processes > 1:  # a listening socket per process (kit/serving)
            run_processes(uvicorn.Config("distnet.asgi:serve_app", workers=processes, **options))
        else:
            uvicorn.run("distnet.asgi:serve_app", **options)


for domain_cli in (calendar_cli, orders_cli, ledger_cli, payouts_cli, risk_cli, staff_cli, worker_cli):
    domain_cli.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
