"""Periodic jobs log at INFO only when they did something (the outbox relay runs every 2 s)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from distnet.db import session_scope
from distnet.events.relay import RelayResult
from distnet.kit.outbox import emit
from distnet.worker.jobs import did_something, run_job


@dataclass
class _Counts:
    moved: int
    amount: int


@pytest.mark.parametrize(
    ("result", "did"),
    [
        (None, False),
        (0, False),
        ([], False),
        ({}, False),
        (RelayResult(published=0, waiting=0), False),
        (_Counts(0, 0), False),
        ({"holds": 0, "cases": 0}, False),
        (3, True),
        ([1], True),
        (RelayResult(published=2, waiting=0), True),
        (_Counts(0, 5), True),
        ({"holds": 1}, True),
    ],
)
def test_did_something(result, did):
    assert did_something(result) is did


async def test_the_relay_logs_only_runs_that_published(sessionmaker, settings, stub_broker, caplog):
    caplog.set_level("INFO", logger="distnet.worker.jobs")
    for _ in range(3):
        await run_job("outbox_relay", sessionmaker=sessionmaker, settings=settings)
    assert [r for r in caplog.records if r.levelname == "INFO"] == []
    async with session_scope(sessionmaker) as session:
        await emit(session, "order.created", {"order_id": 1})
    await run_job("outbox_relay", sessionmaker=sessionmaker, settings=settings)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert len(lines) == 1 and lines[0].startswith("job outbox_relay done") and lines[0].endswith(": 1")
