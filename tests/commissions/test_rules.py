"""Property-based tests of the money rules (pure): rounding, any sequence of partial refunds,
reversals by status, and the ledger balance of every reversal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from distnet.commissions.rules import (
    commission_amount,
    reversal_due,
    reversal_lines,
    split_available_reversal,
)
from distnet.ranks.ladder import DEFAULT_LADDER, RANK_ORDER, progress, upgrade_to

amounts = st.integers(min_value=1, max_value=10**13)
bps = st.integers(min_value=0, max_value=10_000)


@given(amounts, bps)
def test_commission_is_floor_and_bounded(base, rate):
    c = commission_amount(base, rate)
    assert c * 10_000 <= base * rate < (c + 1) * 10_000
    assert 0 <= c <= base


@st.composite
def refund_sequences(draw):
    amount = draw(st.integers(min_value=1, max_value=10**9))
    parts = []
    remaining = amount
    while remaining and len(parts) < 12:
        part = draw(st.integers(min_value=1, max_value=remaining))
        parts.append(part)
        remaining -= part
        if draw(st.booleans()):
            break
    full = draw(st.booleans())
    if full and remaining:
        parts.append(remaining)
    return amount, parts


@given(refund_sequences(), bps, st.sampled_from(["pending", "withheld", "available", "paid", "forfeited"]))
@settings(max_examples=300)
def test_any_refund_sequence_reverses_monotonically_and_nets_zero(seq, rate, status):
    amount, parts = seq
    commission = commission_amount(amount, rate)
    reversed_ = 0
    refunded = 0
    available = commission if status == "available" else 0
    for part in parts:
        refunded += part
        r = reversal_due(commission, refunded, amount, reversed_)
        assert r >= 0
        lines = reversal_lines(status, r, available)
        assert sum(line[1] for line in lines) == 0  # every reversal is a balanced transaction
        for kind, value, _platform in lines:
            if kind == "available":
                available += value
                assert available >= 0  # never takes more than is available; the rest becomes debt
        reversed_ += r
        assert 0 <= reversed_ <= commission
        assert reversed_ == commission * refunded // amount
    if refunded == amount:
        assert reversed_ == commission  # fully refunded: the level nets to exactly 0


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=-(10**6), max_value=10**9))
def test_available_split(r, balance):
    split = split_available_reversal(r, balance)
    assert split.from_available + split.debt == r
    assert 0 <= split.from_available <= max(0, balance)
    assert split.debt >= 0


@given(
    st.integers(min_value=0, max_value=10**10),
    st.integers(min_value=0, max_value=10**11),
    st.sampled_from(RANK_ORDER),
)
def test_ladder_upgrades_only_upwards(personal, team, rank):
    target = upgrade_to(DEFAULT_LADDER, rank, personal, team)
    if target is not None:
        assert RANK_ORDER.index(target) > RANK_ORDER.index(rank)
    qualified = DEFAULT_LADDER.qualified(personal, team)
    step = DEFAULT_LADDER.steps[RANK_ORDER.index(qualified.rank)]
    assert personal >= step.min_personal and team >= step.min_team
    p = progress(DEFAULT_LADDER, rank, personal, team)
    if p.next_rank is not None:
        nxt = DEFAULT_LADDER.next_step(rank)
        assert p.personal_needed == max(0, nxt.min_personal - personal)


def test_reversal_lines_by_status():
    assert reversal_lines("pending", 5) == [("pending", -5, False), ("commission_expense", 5, True)]
    assert reversal_lines("withheld", 5) == [("withheld", -5, False), ("commission_expense", 5, True)]
    assert reversal_lines("paid", 5) == [("owed", -5, False), ("commission_expense", 5, True)]
    assert reversal_lines("available", 5, 3) == [
        ("available", -3, False),
        ("owed", -2, False),
        ("commission_expense", 5, True),
    ]
    assert reversal_lines("reserved", 5, 3) == reversal_lines("available", 5, 3)
    assert reversal_lines("available", 0, 3) == []
