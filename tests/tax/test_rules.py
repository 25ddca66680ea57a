"""The withholding on labour remuneration (劳务报酬 预扣预缴): the issue's five examples, the
rules' shape, and the SQL function that payout runs use agreeing with the pure one."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from distnet.tax.rules import (
    CHINA_LABOUR_REMUNERATION,
    InvalidTaxRules,
    additional_withholding,
    compute,
    validate,
    withholding,
)

YUAN = 100


@pytest.mark.parametrize(
    ("income", "tax"),
    [
        (800, 0),  # at most 4,000: deduct 800 -> nothing taxable
        (3_000, 440),  # 3,000 - 800 = 2,200 at 20%
        (5_000, 800),  # 5,000 x 80% = 4,000 at 20%
        (30_000, 5_200),  # 24,000 at 30% - 2,000
        (80_000, 18_600),  # 64,000 at 40% - 7,000
    ],
)
def test_the_five_examples(income, tax):
    assert withholding(income * YUAN, CHINA_LABOUR_REMUNERATION) == tax * YUAN


def test_bracket_edges_and_rounding_half_up():
    w = compute(4_000 * YUAN, CHINA_LABOUR_REMUNERATION)
    assert (w.deduction, w.taxable, w.tax) == (800 * YUAN, 3_200 * YUAN, 640 * YUAN)
    # 4,000.01: deduction 20% = 800.002 -> 800.00; taxable 3,200.01 at 20% = 640.002 -> 640.00
    assert compute(400_001, CHINA_LABOUR_REMUNERATION).tax == 64_000
    # 4,000.03: 20% of 400,003 fen = 80,000.6 -> 80,001; taxable 320,002 at 20% = 64,000.4 -> 64,000
    assert compute(400_003, CHINA_LABOUR_REMUNERATION).deduction == 80_001
    # 25,000 x 80% = 20,000 taxable: still the 20% bracket
    assert compute(25_000 * YUAN, CHINA_LABOUR_REMUNERATION).tax == 4_000 * YUAN
    assert withholding(0, CHINA_LABOUR_REMUNERATION) == 0


def test_two_payments_in_a_month_are_one_income():
    first = withholding(3_000 * YUAN, CHINA_LABOUR_REMUNERATION)
    second = additional_withholding(3_000 * YUAN, first, 27_000 * YUAN, CHINA_LABOUR_REMUNERATION)
    assert first + second == withholding(30_000 * YUAN, CHINA_LABOUR_REMUNERATION) == 5_200 * YUAN
    assert second == 4_760 * YUAN


@given(st.integers(min_value=0, max_value=10**10), st.integers(min_value=1, max_value=10**9))
def test_more_income_never_less_tax(income, extra):
    assert withholding(income + extra, CHINA_LABOUR_REMUNERATION) >= withholding(
        income, CHINA_LABOUR_REMUNERATION
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(kind="flat"), "kind"),
        (lambda r: r["brackets"][0].update(rate_bps=10_001), "rate_bps"),
        (lambda r: r["brackets"].reverse(), "open"),
        (lambda r: r["deduction"].update(fixed=-1), "deduction.fixed"),
        (lambda r: r.update(brackets=[]), "brackets"),
    ],
)
def test_bad_rules_are_named(change, message):
    rules = json.loads(json.dumps(CHINA_LABOUR_REMUNERATION))
    change(rules)
    with pytest.raises(InvalidTaxRules, match=message):
        validate(rules)
    assert validate(CHINA_LABOUR_REMUNERATION) == CHINA_LABOUR_REMUNERATION


async def test_sql_function_agrees_with_the_pure_rules(session):
    incomes = [
        0,
        1,
        79_999,
        80_000,
        80_001,
        399_999,
        400_000,
        400_001,
        400_002,
        400_003,
        2_500_000,
        2_500_001,
        6_250_000,
        6_250_001,
        10**10,
    ]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.integers(min_value=0, max_value=2 * 10**9), min_size=50, max_size=50))
    def more(xs):
        incomes.extend(xs)

    more()
    got = (
        await session.execute(
            text(
                "SELECT i, distnet_withholding_tax(i, CAST(:rules AS jsonb)) FROM unnest(CAST(:incomes AS bigint[])) i"
            ),
            {"rules": json.dumps(CHINA_LABOUR_REMUNERATION), "incomes": incomes},
        )
    ).all()
    assert len(got) == len(incomes) > 1000
    for income, tax in got:
        assert tax == withholding(income, CHINA_LABOUR_REMUNERATION), income
