"""Test fixtures: a real PostgreSQL database per test session (per xdist worker), migrated with
Alembic, emptied after every test; real Redis. ``DISTNET_DATABASE_URL`` / ``DISTNET_REDIS_URL``
point at servers when set; otherwise embedded servers start once and are removed at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from distnet.app import create_app
from distnet.db import make_engine, make_sessionmaker, normalize_url
from distnet.kit.auth import create_key
from distnet.migrate import upgrade
from distnet.models import Base
from distnet.settings import BusinessSettings, DatabaseSettings, NotifySettings, RedisSettings, Settings
from tests.contract import contract_mismatch

KEEP_TABLES = {"alembic_version"}


@pytest.fixture(scope="session")
def embedded_dir() -> Iterator[Path | None]:
    if os.environ.get("DISTNET_DATABASE_URL") and os.environ.get("DISTNET_REDIS_URL"):
        yield None
        return
    path = Path(tempfile.mkdtemp(prefix="distnet-test-"))
    yield path
    from distnet.kit.embedded import stop_embedded

    stop_embedded(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(embedded_dir: Path | None, worker_id: str) -> Iterator[str]:
    from distnet.kit.embedded import create_database, drop_database, ensure_postgres

    admin = os.environ.get("DISTNET_DATABASE_URL") or ensure_postgres(embedded_dir)
    admin = normalize_url(admin)
    _drop_orphaned_test_databases(admin)
    name = f"distnet_test_{worker_id}_{os.getpid()}_{secrets.token_hex(4)}"
    url = create_database(admin, name)
    upgrade(url)
    yield url
    drop_database(admin, name)


def _drop_orphaned_test_databases(admin: str) -> None:
    """A run killed before its teardown leaves its database behind; the database name carries
    the owning process id, so the next run on this machine drops those whose process is gone."""
    from distnet.kit.embedded import drop_database

    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        names = [
            r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'distnet_test_%'")
        ]
    for name in names:
        parts = name.split("_")
        if len(parts) != 5 or not parts[3].isdigit():
            continue
        try:
            os.kill(int(parts[3]), 0)
        except ProcessLookupError:
            drop_database(admin, name)
        except PermissionError:
            pass


@pytest.fixture(scope="session")
def redis_url(embedded_dir: Path | None) -> str:
    if os.environ.get("DISTNET_REDIS_URL"):
        return os.environ["DISTNET_REDIS_URL"]
    from distnet.kit.embedded import ensure_redis

    return ensure_redis(embedded_dir)


@pytest.fixture(scope="session")
def worker_id() -> str:  # overridden by pytest-xdist when it runs
    return "main"


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=b"test-secret-key",
        database=DatabaseSettings(url=database_url, pool_size=5),
        redis=RedisSettings(url=redis_url),
        business=BusinessSettings(),
        # request rate limits are tested with their own limiter (tests/notifications/test_codes.py):
        # the suite registers many distributors from one test client address
        notify=NotifySettings(rate_limits="off"),
    )


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=5)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture(scope="session")
def _truncate_sql() -> str:
    tables = ", ".join(f'"{t}"' for t in Base.metadata.tables if t not in KEEP_TABLES)
    # the money and audit tables refuse TRUNCATE (migration 0012); replication role "replica" skips
    # that trigger, and only a superuser may set it (the application's role cannot): README, Tests
    return (
        f"SET session_replication_role = replica; TRUNCATE {tables} RESTART IDENTITY CASCADE; "
        "RESET session_replication_role"
    )


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database_url" not in request.fixturenames:
        return
    url = request.getfixturevalue("database_url").replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(request.getfixturevalue("_truncate_sql"))


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s
        await s.rollback()


@pytest.fixture(scope="session")
async def app(settings: Settings, database_url: str, redis_url: str):
    return create_app(settings, database_url=database_url, redis_url=redis_url)


@pytest.fixture
async def client(app) -> AsyncIterator[AsyncTestClient]:
    """Every response the suite receives is checked against the operation's published schema
    (tests/contract.py): a status it does not declare, or a body that does not match, fails the test."""
    mismatches: list[str] = []

    async def check(response):
        await response.aread()
        mismatch = contract_mismatch(response)
        if mismatch:
            mismatches.append(mismatch)

    async with AsyncTestClient(app=app) as c:
        c.event_hooks["response"].append(check)
        yield c
    assert not mismatches, "responses that break the published contract:\n" + "\n".join(mismatches)


@pytest.fixture
def make_key(sessionmaker: async_sessionmaker[AsyncSession]):
    async def _make(*roles: str, name: str = "test", distributor_id: int | None = None) -> str:
        async with sessionmaker() as s:
            _, raw = await create_key(s, name=name, roles=list(roles), distributor_id=distributor_id)
            await s.commit()
        return raw

    return _make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def admin_headers(make_key) -> dict[str, str]:
    return bearer(await make_key("admin", name="admin"))
