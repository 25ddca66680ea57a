"""Server tuning from the machine (kit/pgtune.py): the rules, the embedded server that applies
them at first start and again when the machine changed, and ``distnet db recommend``."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from distnet.cli import app
from distnet.kit import embedded, pgtune
from distnet.kit.pgtune import GB, MB, Machine, recommend
from tests.own_servers import wait_until

TUNED = (
    "shared_buffers",
    "effective_cache_size",
    "max_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "work_mem",
    "random_page_cost",
)


@pytest.mark.parametrize(
    ("machine", "share", "expected"),
    [
        # a laptop: the embedded server takes half of 8 GB
        (
            Machine(8 * GB, 4),
            0.5,
            {
                "shared_buffers": "1GB",
                "effective_cache_size": "3GB",
                "max_wal_size": "1GB",
                "work_mem": "10MB",
                "max_parallel_workers_per_gather": "2",
            },
        ),
        # this 2-core, 24 GB development machine as a database server of its own
        (
            Machine(24 * GB, 2),
            1.0,
            {
                "shared_buffers": "6GB",
                "effective_cache_size": "18GB",
                "max_wal_size": "6GB",
                "work_mem": "61MB",
                "max_parallel_workers": "2",
            },
        ),
        # a large database machine: buffers and WAL capped at 16 GB, work_mem at 256 MB
        (
            Machine(512 * GB, 64),
            1.0,
            {
                "shared_buffers": "16GB",
                "max_wal_size": "16GB",
                "work_mem": "256MB",
                "max_worker_processes": "64",
            },
        ),
        # a tiny one: never below stock
        (
            Machine(512 * MB, 1),
            1.0,
            {
                "shared_buffers": "128MB",
                "work_mem": "4MB",
                "max_wal_size": "1GB",
                "max_parallel_workers_per_gather": "1",
            },
        ),
        # rotating disk; little free disk caps the WAL at a tenth of it
        (
            Machine(16 * GB, 8, disk_free=20 * GB, ssd=False),
            1.0,
            {"random_page_cost": "4", "max_wal_size": "2GB"},
        ),
    ],
)
def test_recommend(machine: Machine, share: float, expected: dict[str, str]) -> None:
    tuning = recommend(machine, share=share)
    assert {name: tuning.settings[name] for name in expected} == expected
    assert set(TUNED) <= set(tuning.settings)
    assert tuning.settings["checkpoint_timeout"] == "15min"
    # WAL compression costs CPU: only where there are cores to spare
    assert tuning.settings["wal_compression"] == ("on" if machine.cores > 4 else "off")


def test_parse_size_and_probe() -> None:
    assert pgtune.parse_size("64GB") == 64 * GB
    assert pgtune.parse_size("512m") == 512 * MB
    assert pgtune.parse_size("1048576") == MB
    here = pgtune.probe(Path(tempfile.gettempdir()))
    assert here.memory > 256 * MB and here.cores >= 1 and here.disk_free and here.disk_free > 0


def test_db_recommend_prints_the_settings() -> None:
    result = CliRunner().invoke(app, ["db", "recommend", "--memory", "64GB", "--cores", "16", "--no-ssd"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(" = ") for line in result.output.splitlines() if not line.startswith("#"))
    assert lines["shared_buffers"] == "'16GB'" and lines["effective_cache_size"] == "'48GB'"
    assert lines["random_page_cost"] == "'4'" and lines["max_parallel_workers"] == "'16'"
    assert set(TUNED) <= set(lines)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="distnet-pgtune-test-"))
    try:
        yield path
    finally:
        embedded.stop_embedded(path)
        shutil.rmtree(path, ignore_errors=True)


def _show(url: str, name: str) -> str:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def test_embedded_server_is_tuned_at_first_start_and_when_the_machine_changes(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = Machine(4 * GB, 2, disk_free=100 * GB)
    monkeypatch.setattr(pgtune, "probe", lambda where=None: small)
    url = embedded.ensure_postgres(data_dir)
    conf = (data_dir / "postgres" / embedded.TUNING_FILE).read_text()
    assert conf.startswith("# distnet tuning for 4096 MB, 2 cores")
    assert _show(url, "shared_buffers") == "512MB"  # a quarter of the half of 4 GB it may use
    assert _show(url, "max_wal_size") == "1GB" and _show(url, "checkpoint_timeout") == "15min"
    assert _show(url, "random_page_cost") == "1.1" and _show(url, "wal_compression") == "off"  # 2 cores

    # the machine grew while the server ran: the file is rewritten and reloaded at once; what
    # needs a restart (shared_buffers) applies at the next start
    monkeypatch.setattr(pgtune, "probe", lambda where=None: Machine(16 * GB, 4, disk_free=100 * GB))
    assert embedded.ensure_postgres(data_dir) == url
    assert "16384 MB, 4 cores" in (data_dir / "postgres" / embedded.TUNING_FILE).read_text()
    wait_until(lambda: _show(url, "work_mem") == "20MB")  # SIGHUP: the postmaster re-reads it soon after
    assert _show(url, "max_wal_size") == "2GB"
    embedded.stop_embedded(data_dir)
    url = embedded.ensure_postgres(data_dir)
    assert _show(url, "shared_buffers") == "2GB"
    # unchanged machine: the file is left as it is
    before = (data_dir / "postgres" / embedded.TUNING_FILE).stat().st_mtime_ns
    embedded.ensure_postgres(data_dir)
    assert (data_dir / "postgres" / embedded.TUNING_FILE).stat().st_mtime_ns == before
