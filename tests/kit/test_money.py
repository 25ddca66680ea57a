"""Money strings at the edges: parse and format are exact inverses on every amount accepted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distnet.kit.errors import ValidationFailed
from distnet.kit.money import MAX_AMOUNT_MINOR, format_amount, parse_amount

_AMOUNTS = st.from_regex(r"\A-?[0-9]{1,15}(\.[0-9]{1,2})?\Z")


@given(text=_AMOUNTS)
def test_parse_matches_decimal_arithmetic(text):
    expected = int(Decimal(text) * 100)
    if expected <= 0 or expected > MAX_AMOUNT_MINOR:
        with pytest.raises(ValidationFailed):
            parse_amount(text)
    else:
        assert parse_amount(text) == expected


@given(minor=st.integers(min_value=1, max_value=MAX_AMOUNT_MINOR))
def test_format_then_parse_is_the_same_amount(minor):
    assert parse_amount(format_amount(minor)) == minor


@pytest.mark.parametrize(
    "text", ["1.234", "1e5", "0x10", "1,5", "١٢", "12.", ".5", "--1", "1.2.3", "", "NaN"]
)
def test_anything_else_is_refused(text):
    with pytest.raises(ValidationFailed):
        parse_amount(text)
