"""Alembic, driven from code: ``distnet db upgrade`` and the test fixtures call this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from distnet.db import normalize_url

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
    cfg.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s")
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
