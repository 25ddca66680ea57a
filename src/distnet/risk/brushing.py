"""Pure core of the order-brushing rule ``buyer_concentration`` (Shopee's published definition).

Definition
----------
For a card (a shop) and a closed time interval ``[t, t + window]``::

    concentrate rate = orders in the interval / unique buyers in the interval

The card is brushing if the rate reaches ``min_ratio`` (Shopee: 3) in *any* such interval, for
every real start ``t``, not only starts at an order.  Its brushing periods are the union of all
intervals that reach it; the suspicious buyers are the buyers with the most orders among the
card's orders in the brushing periods (each order counted once, all of them on a tie).

Why a sweep over order times is exhaustive
-------------------------------------------
Let ``T_0 < T_1 < ... < T_{G-1}`` be the card's distinct order times (orders placed at the same
instant are inseparable: no interval holds one without the other).  The order set of
``[t, t + window]`` only changes when ``t`` crosses some ``T_i`` or some ``T_i - window``, so it
is always a run of time groups ``a..b`` with

* ``T_b - T_a <= window`` (the run fits: the interval is closed at both ends), and
* ``T_{b+1} - T_{a-1} > window`` (the neighbours do not both fit, otherwise every interval that
  holds the run holds one of them too; a missing neighbour counts as infinitely far).

Every such run is the order set of some interval (take ``t`` in
``(T_{a-1}, T_a] ∩ [T_b - window, T_{b+1} - window)``, which is non-empty), so these runs are
exactly the sets to test.  The second condition matters: testing only intervals that *start* at
an order (or only those that start or end at one) misses intervals that fit between two other
buyers' orders, while testing *every* run ``i..j`` of span ``<= window`` counts sets that no
1-hour interval can isolate (it wrongly flags 40 of the 489 shops of Shopee's labelled set; the
start-or-end variant misses 7).  For a fixed ``a`` the valid ``b`` are
``hi(a-1) <= b <= hi(a)``, where ``hi(a)`` is the last group with ``T <= T_a + window``, so the
runs number ``O(G)`` in total and two pointers enumerate them in order, adding and removing each
group once: ``O(n log n)`` per card for the sort, ``O(n)`` after it.

The function is pure: no I/O, no clock, the result depends only on the multiset of orders.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

__all__ = [
    "DEFAULT_MIN_RATIO",
    "DEFAULT_WINDOW",
    "ConcentrationFinding",
    "OrderEvent",
    "find_buyer_concentration",
]

DEFAULT_WINDOW = timedelta(minutes=60)
DEFAULT_MIN_RATIO = 3.0


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One order of a card: who bought (``buyer``, a buyer ref) and when (``placed_at``)."""

    order_id: str | int
    card: str | int
    buyer: str
    placed_at: datetime


@dataclass(frozen=True, slots=True)
class ConcentrationFinding:
    """A card that brushed.

    ``suspicious_buyers``: the buyers with the most orders inside the brushing periods, sorted.
    ``order_ids``: those buyers' orders inside the brushing periods, in time order.
    ``intervals``: the brushing periods, merged, each as (first order time, last order time)
    of the orders it covers; disjoint and in time order.
    ``max_ratio``: the highest concentrate rate of any interval of the card.
    """

    card: str | int
    suspicious_buyers: tuple[str, ...]
    order_ids: tuple[str | int, ...]
    intervals: tuple[tuple[datetime, datetime], ...]
    max_ratio: float


def _order_key(order: OrderEvent) -> tuple[datetime, bool, str | int]:
    # Time first; the id only makes the order of simultaneous orders deterministic
    # (the bool keeps str and int ids apart so they never get compared).
    return (order.placed_at, isinstance(order.order_id, str), order.order_id)


def _as_fraction(min_ratio: float | int | Fraction) -> Fraction:
    if isinstance(min_ratio, bool) or not isinstance(min_ratio, (int, float, Fraction)):
        raise TypeError(f"min_ratio must be a number, got {min_ratio!r}")
    if isinstance(min_ratio, float) and not math.isfinite(min_ratio):
        raise ValueError(f"min_ratio must be finite, got {min_ratio!r}")
    # A float is read as the decimal it prints as (2.99 -> 299/100, not the double just above
    # it), so a configured threshold is met by a rate equal to it; comparisons are then exact.
    ratio = Fraction(repr(min_ratio)) if isinstance(min_ratio, float) else Fraction(min_ratio)
    if ratio <= 0:
        raise ValueError(f"min_ratio must be positive, got {min_ratio!r}")
    return ratio


def find_buyer_concentration(
    orders: Iterable[OrderEvent],
    *,
    window: timedelta = DEFAULT_WINDOW,
    min_ratio: float = DEFAULT_MIN_RATIO,
) -> list[ConcentrationFinding]:
    """Cards whose orders ÷ unique buyers reaches ``min_ratio`` in some closed interval of length
    ``window`` (any real start).  One finding per brushing card, in order of the cards' first
    appearance in ``orders``; cards that did not brush are absent.  Each ``OrderEvent`` counts as
    one order.  The placed_at values of one card must be mutually comparable (all naive or all
    aware)."""
    if not isinstance(window, timedelta):
        raise TypeError(f"window must be a timedelta, got {window!r}")
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window!r}")
    ratio = _as_fraction(min_ratio)

    by_card: dict[str | int, list[OrderEvent]] = {}
    for order in orders:
        by_card.setdefault(order.card, []).append(order)

    findings: list[ConcentrationFinding] = []
    for card, card_orders in by_card.items():
        finding = _card_finding(card, card_orders, window, ratio.numerator, ratio.denominator)
        if finding is not None:
            findings.append(finding)
    return findings


def _card_finding(
    card: str | int,
    orders: list[OrderEvent],
    window: timedelta,
    ratio_num: int,
    ratio_den: int,
) -> ConcentrationFinding | None:
    orders.sort(key=_order_key)
    n = len(orders)

    # Time groups: group g holds orders[starts[g]:starts[g + 1]], all placed at times[g].
    times: list[datetime] = []
    starts: list[int] = []
    for i, order in enumerate(orders):
        if not times or order.placed_at != times[-1]:
            times.append(order.placed_at)
            starts.append(i)
    starts.append(n)
    n_groups = len(times)
    buyers = [order.buyer for order in orders]

    per_buyer: dict[str, int] = defaultdict(int)
    n_orders = 0  # orders in the current window
    n_buyers = 0  # unique buyers in the current window

    def add(g: int) -> None:
        nonlocal n_orders, n_buyers
        for i in range(starts[g], starts[g + 1]):
            count = per_buyer[buyers[i]]
            if count == 0:
                n_buyers += 1
            per_buyer[buyers[i]] = count + 1
        n_orders += starts[g + 1] - starts[g]

    def remove(g: int) -> None:
        nonlocal n_orders, n_buyers
        for i in range(starts[g], starts[g + 1]):
            count = per_buyer[buyers[i]] - 1
            if count == 0:
                n_buyers -= 1
            per_buyer[buyers[i]] = count
        n_orders -= starts[g + 1] - starts[g]

    best_orders, best_buyers = 0, 1  # highest orders/buyers over all windows
    periods: list[list[int]] = []  # merged brushing runs of groups, [first, last]

    def evaluate(a: int, b: int) -> None:
        nonlocal best_orders, best_buyers
        if n_orders * best_buyers > best_orders * n_buyers:
            best_orders, best_buyers = n_orders, n_buyers
        if n_orders * ratio_den >= ratio_num * n_buyers:
            # a and b never decrease, so a run overlaps at most the last period.
            if periods and a <= periods[-1][1]:
                periods[-1][1] = b
            else:
                periods.append([a, b])

    # Window = groups a..b.  For each a the realisable b are hi(a-1) <= b <= hi(a), where hi(x)
    # is the last group within `window` of group x; b carries over from the previous a.
    b = -1
    for a in range(n_groups):
        if a > 0:
            remove(a - 1)
        if b < a:  # hi(a-1) == a-1: the window starts with group a alone
            b = a
            add(a)
        evaluate(a, b)
        limit = times[a] + window
        while b + 1 < n_groups and times[b + 1] <= limit:
            b += 1
            add(b)
            evaluate(a, b)

    if not periods:
        return None

    in_periods = [i for first, last in periods for i in range(starts[first], starts[last + 1])]
    counts: dict[str, int] = defaultdict(int)
    for i in in_periods:
        counts[buyers[i]] += 1
    top = max(counts.values())
    suspicious = frozenset(buyer for buyer, count in counts.items() if count == top)

    return ConcentrationFinding(
        card=card,
        suspicious_buyers=tuple(sorted(suspicious)),
        order_ids=tuple(orders[i].order_id for i in in_periods if buyers[i] in suspicious),
        intervals=tuple((times[first], times[last]) for first, last in periods),
        max_ratio=best_orders / best_buyers,
    )
