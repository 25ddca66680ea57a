"""Alembic, driven from code: ``distnet db upgrade`` and the test fixtures call this."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from distnet.settings import normalize_url

MIGRATIONS = Path(__file__).parent / "migrations"
SQL = MIGRATIONS / "sql"


def sql_source(function: str, revision: str) -> str:
    """The SQL of database function ``function`` (and the triggers that call it) as revision
    ``revision`` defines it: ``migrations/sql/<function>/<revision>.sql``. Each definition is a
    whole file, so a change of a function is a new file a reviewer can diff with the previous
    one, and a downgrade loads the previous file instead of editing strings. The newest file of
    each function is what a migrated database runs (tests/db/test_models_match_migrations.py)."""
    return (SQL / function / f"{revision}.sql").read_text()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    cfg.set_main_option(
        "file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


def current_revision(url: str) -> str | None:
    plain = normalize_url(url).replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,):
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def upgrade_if_behind(url: str) -> None:
    """Upgrade to the newest revision unless the database is there already (one query, no
    Alembic run: this is on the path of every local-mode command)."""
    if current_revision(url) != head_revision():
        upgrade(url)
