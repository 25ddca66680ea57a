"""``distnet``: the operator's command line. Each domain adds its commands in ``<domain>/cli.py``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from distnet.settings import get_settings

app = typer.Typer(help="distnet: distribution network backend", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
keys_app = typer.Typer(help="API keys", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations (local mode starts the embedded PostgreSQL first)."""
    from distnet.db import resolve_database_url
    from distnet.migrate import upgrade

    upgrade(resolve_database_url(get_settings()), revision)
    typer.echo(f"database at {revision}")


@db_app.command("backup")
def db_backup(
    out: Annotated[Path, typer.Option("--out", "-o", help="archive file to write (FILE.json gets the manifest)")],
) -> None:
    """Back up the database (pg_dump custom format, one consistent snapshot; safe while serving)."""
    from distnet.backup import BackupError, backup
    from distnet.db import resolve_database_url

    try:
        manifest = backup(resolve_database_url(get_settings()), out)
    except BackupError as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{out}: {manifest.bytes:,} bytes in {manifest.seconds:.1f}s, snapshot after {manifest.snapshot_after}")
    typer.echo("rows: " + ", ".join(f"{table} {n:,}" for table, n in manifest.rows.items()))


@db_app.command("restore")
def db_restore(
    archive: Annotated[Path, typer.Argument(help="archive written by `distnet db backup`")],
    database: Annotated[str, typer.Argument(help="name of the NEW database to create and restore into")],
    verify: Annotated[bool, typer.Option(help="run `ledger verify` on the restored database")] = True,
) -> None:
    """Restore an archive into a new database on the configured server, then check it."""
    from distnet.backup import BackupError, restore
    from distnet.db import resolve_database_url

    try:
        report = restore(archive, resolve_database_url(get_settings()), database, verify=verify)
    except BackupError as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"restored into {report.database} in {report.seconds:.1f}s; rows match the manifest")
    typer.echo("rows: " + ", ".join(f"{table} {n:,}" for table, n in report.rows.items()))
    if not report.ledger_ok:
        typer.echo("ledger verify FAILED on the restored database:\n  " + "\n  ".join(report.failed_checks), err=True)
        raise typer.Exit(2)
    typer.echo("ledger verified" if verify else "ledger not verified (--no-verify)")


@keys_app.command("create")
def keys_create(
    role: Annotated[list[str], typer.Option("--role", help="role; repeat for several")],
    name: Annotated[str, typer.Option("--name")],
    distributor_id: Annotated[int | None, typer.Option("--distributor-id")] = None,
) -> None:
    """Create an API key; the key is printed once, as the last line."""
    from distnet.kit.auth import create_key
    from distnet.kit.runner import run_in_session

    async def create(session, settings):
        key, raw = await create_key(session, name=name, roles=role, distributor_id=distributor_id)
        return key.id, key.roles, raw

    key_id, roles, raw = run_in_session(create)
    typer.echo(f"key {key_id} '{name}' roles: {', '.join(roles)}")
    typer.echo("store it now: it is shown once")
    typer.echo(raw)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[bool, typer.Option(help="run a worker and the scheduler in-process (default in local mode)")]
    = None,  # type: ignore[assignment]
    processes: Annotated[int, typer.Option(min=1, help="server processes sharing the port (one per core)")] = 1,
) -> None:
    """Serve the API. In local mode: embedded servers, migrations, in-process worker and scheduler."""
    import os

    import uvicorn

    from distnet.db import resolve_database_url, resolve_redis_url
    from distnet.migrate import upgrade

    settings = get_settings()
    logging.basicConfig(level=logging.INFO)
    if settings.local_mode:
        upgrade(resolve_database_url(settings))
    in_process = settings.local_mode if workers is None else workers
    # the processes build the app from the environment (serve_app): pass what was resolved here,
    # so that every process talks to the same (possibly embedded) servers
    os.environ["DISTNET_DATABASE_URL"] = resolve_database_url(settings)
    os.environ["DISTNET_REDIS_URL"] = resolve_redis_url(settings)
    os.environ["DISTNET_SERVE_BACKGROUND"] = "1" if in_process else "0"
    uvicorn.run("distnet.app:serve_app", factory=True, host=host, port=port, workers=processes,
                log_level="info")


def _register_domains() -> None:
    from distnet.ledger import cli as ledger_cli
    from distnet.orders import cli as orders_cli
    from distnet.payouts import cli as payouts_cli
    from distnet.risk import cli as risk_cli
    from distnet.staff import cli as staff_cli
    from distnet.worker import cli as worker_cli

    for module in (orders_cli, ledger_cli, payouts_cli, risk_cli, staff_cli, worker_cli):
        module.register(app)


_register_domains()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
