"""Bad input never gets a 500: schemathesis generates requests for every operation in the
OpenAPI schema (valid and invalid bodies, parameters, ids) and sends them, with an admin key, to
the real app served on loopback against the test database. Every answer must be one the
operation declares, in the declared shape (problem codes included)."""

from __future__ import annotations

from pathlib import Path

import hypothesis
import psycopg
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from distnet.app import create_app
from distnet.kit.auth import hash_key, new_key
from distnet.kit.liveserver import serve_in_thread
from distnet.settings import DatabaseSettings, RedisSettings, Settings
from tests.contract import UNCONVERTED

_schema_settings = Settings(Path("/nonexistent"), b"schema-only", DatabaseSettings(None), RedisSettings(None))
schema = schemathesis.openapi.from_dict(create_app(_schema_settings).openapi_schema.to_schema())


@pytest.fixture(scope="session")
def live_server(settings, database_url, redis_url):
    with serve_in_thread(create_app(settings, database_url=database_url, redis_url=redis_url)) as url:
        yield url


@pytest.fixture
def admin_key(database_url) -> str:
    raw, prefix = new_key()
    with psycopg.connect(
        database_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
    ) as conn:
        conn.execute(
            "INSERT INTO api_key (name, prefix, key_hash, roles) VALUES ('fuzz', %s, %s, ARRAY['admin'])",
            (prefix, hash_key(raw)),
        )
    return raw


@schema.parametrize()
@hypothesis.settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
def test_no_server_errors(case, live_server, admin_key):
    response = case.call(base_url=live_server, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        content_type = response.headers["content-type"]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), response.text
    # a method the path does not have (405, OPTIONS) belongs to no operation
    own_method = case.method.upper() == case.operation.method.upper()
    if own_method and f"{case.method.upper()} {case.operation.path}" not in UNCONVERTED:
        declared = case.operation.definition.raw["responses"]
        assert str(response.status_code) in declared, (response.status_code, response.text)
        case.operation.validate_response(response)
