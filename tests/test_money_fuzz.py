"""The stateful money fuzz (tests/money_machine.py), bounded for CI: a few machines of a few dozen
steps each, every step checked. ``scripts/fuzz_money.py`` runs the same machine for 10,000+ steps."""

from __future__ import annotations

import hypothesis
from hypothesis import HealthCheck
from hypothesis.stateful import run_state_machine_as_test
from litestar.testing import TestClient

from distnet.app import create_app
from tests import money_machine

CI_MACHINES = 3
CI_STEPS = 30


def test_money_state_machine(settings, database_url, redis_url, _truncate_sql):
    app = create_app(settings, database_url=database_url, redis_url=redis_url)
    with TestClient(app=app) as client:
        env = money_machine.configure(client, database_url, [_truncate_sql])
        try:
            run_state_machine_as_test(
                money_machine.MoneyMachine,
                settings=hypothesis.settings(
                    max_examples=CI_MACHINES,
                    stateful_step_count=CI_STEPS,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                ),
            )
        finally:
            money_machine.close(env)
    # the run did reach the money path and had steps refused (each checked to change nothing)
    assert env.steps >= CI_MACHINES * 5
    assert env.refused > 0
