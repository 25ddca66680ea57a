"""One settings object: every ``DISTNET_*`` variable is read in ``settings.py``, typed and checked
at start (a bad value is one clear error naming the variable), and listed in README."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from distnet.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "distnet"
READ = re.compile(r"""(?:environ\.get\(|getenv\(|environ\[)\s*["'](DISTNET_\w+)["']\s*(?:\](?!\s*=)|[,)])""")


def test_only_settings_py_reads_distnet_variables() -> None:
    readers = {str(path.relative_to(SRC)): READ.findall(path.read_text()) for path in SRC.rglob("*.py")}
    assert {path: names for path, names in readers.items() if names} == {}


def test_readme_lists_every_variable_settings_reads() -> None:
    read = set(re.findall(r'"(DISTNET_\w+)"', (SRC / "settings.py").read_text()))
    table = set(re.findall(r"^\| `(DISTNET_\w+)`", (ROOT / "README.md").read_text(), flags=re.M))
    assert read == table, f"read but not in README: {read - table}; in README but not read: {table - read}"


def test_defaults_and_typed_values(tmp_path: Path) -> None:
    settings = load_settings({"DISTNET_DATA_DIR": str(tmp_path), "DISTNET_SECRET_KEY": "k" * 20})
    assert settings.local_mode and settings.business.time_zone == "Asia/Shanghai"
    assert (settings.database.pool_size, settings.webhooks.max_retries, settings.broker.namespace) == (
        10,
        12,
        "distnet",
    )
    configured = load_settings(
        {
            "DISTNET_DATA_DIR": str(tmp_path),
            "DISTNET_SECRET_KEY": "k" * 20,
            "DISTNET_DATABASE_URL": "postgres://u@db/x",
            "DISTNET_REDIS_URL": "redis://r:6379/1",
            "DISTNET_TIME_ZONE": "Europe/Paris",
            "DISTNET_CURRENCY": "eur",
            "DISTNET_WEBHOOK_MAX_RETRIES": "0",
            "DISTNET_BROKER": "Stub",
            "DISTNET_SERVE_BACKGROUND": "yes",
        }
    )
    assert configured.database.url == "postgresql+psycopg://u@db/x" and not configured.local_mode
    assert (configured.business.zone.key, configured.business.default_currency) == ("Europe/Paris", "EUR")
    assert (configured.webhooks.max_retries, configured.broker.kind, configured.serve.background) == (
        0,
        "stub",
        True,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DISTNET_DATABASE_URL", "mysql://x/y"),
        ("DISTNET_REDIS_URL", "localhost:6379"),
        ("DISTNET_DATABASE_POOL_SIZE", "0"),
        ("DISTNET_MAX_LEVELS_CAP", "11"),
        ("DISTNET_MAX_LEVELS_CAP", "three"),
        ("DISTNET_CURRENCY", "yuan"),
        ("DISTNET_PAYOUT_MIN_AMOUNT", "-1"),
        ("DISTNET_TIME_ZONE", "Mars/Olympus"),
        ("DISTNET_BROKER", "kafka"),
        ("DISTNET_WEBHOOK_MAX_BACKOFF_MS", "10"),
        ("DISTNET_SERVE_BACKGROUND", "maybe"),
        ("DISTNET_RANK_PERIOD_DAYS", "0"),
        ("DISTNET_ERASURE_RETENTION_DAYS", "-3"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"DISTNET_DATA_DIR": str(tmp_path), "DISTNET_SECRET_KEY": "k" * 20, name: value})


def test_the_cli_stops_at_start_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "DISTNET_DATA_DIR": str(tmp_path), "DISTNET_TIME_ZONE": "Asia/Beijing"}
    out = subprocess.run(
        [sys.executable, "-m", "distnet", "keys", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "configuration error: DISTNET_TIME_ZONE='Asia/Beijing' is not valid: an IANA time zone such as Asia/Shanghai"
    ]
