"""The rank ladder (会员等级 普通/银卡/金卡/白金卡). Pure: thresholds and rank evaluation, no I/O.

A rank is reached when personal sales AND team sales over the trailing period reach its
thresholds (amounts in minor units, net of refunds). Operators may override the ladder with
``DISTNET_RANK_LADDER`` (JSON ``[{"rank": ..., "min_personal": "1000.00", "min_team": "0.00"}, ...]``)
and the period with ``DISTNET_RANK_PERIOD_DAYS``: that is the default, version 0. Versions stored
through ``POST /api/v1/rank-ladders`` (``rank_ladder``) take over from their ``effective_from``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from distnet.kit.money import parse_amount
from distnet.settings import RankSettings, read_section

RANK_ORDER = ("member", "silver", "gold", "platinum")
DEFAULT_PERIOD_DAYS = 90


@dataclass(frozen=True, slots=True)
class RankStep:
    rank: str
    min_personal: int
    min_team: int


@dataclass(frozen=True, slots=True)
class Ladder:
    steps: tuple[RankStep, ...]
    period_days: int = DEFAULT_PERIOD_DAYS
    version: int = 0
    """The stored version (``rank_ladder``); 0 = the built-in or configured default."""
    effective_from: datetime | None = None

    def position(self, rank: str) -> int:
        return RANK_ORDER.index(rank)

    def qualified(self, personal: int, team: int) -> RankStep:
        """The highest step whose thresholds are both met (member always is)."""
        best = self.steps[0]
        for step in self.steps:
            if personal >= step.min_personal and team >= step.min_team:
                best = step
        return best

    def next_step(self, rank: str) -> RankStep | None:
        pos = self.position(rank)
        return self.steps[pos + 1] if pos + 1 < len(self.steps) else None


DEFAULT_LADDER = Ladder(
    steps=(
        RankStep("member", 0, 0),
        RankStep("silver", 100_000, 0),  # 1,000.00 personal
        RankStep("gold", 300_000, 2_000_000),  # 3,000.00 personal and 20,000.00 team
        RankStep("platinum", 1_000_000, 10_000_000),  # 10,000.00 personal and 100,000.00 team
    )
)


@dataclass(frozen=True, slots=True)
class RankProgress:
    rank: str
    qualified_rank: str
    next_rank: str | None
    personal_sales: int
    team_sales: int
    personal_needed: int
    team_needed: int
    period_days: int


def progress(ladder: Ladder, rank: str, personal: int, team: int) -> RankProgress:
    qualified = ladder.qualified(personal, team)
    nxt = ladder.next_step(rank)
    return RankProgress(
        rank=rank,
        qualified_rank=qualified.rank,
        next_rank=nxt.rank if nxt else None,
        personal_sales=personal,
        team_sales=team,
        personal_needed=max(0, nxt.min_personal - personal) if nxt else 0,
        team_needed=max(0, nxt.min_team - team) if nxt else 0,
        period_days=ladder.period_days,
    )


def upgrade_to(ladder: Ladder, rank: str, personal: int, team: int) -> str | None:
    """The rank to upgrade to at once, or None (downgrades wait for the periodic evaluation)."""
    qualified = ladder.qualified(personal, team)
    return qualified.rank if ladder.position(qualified.rank) > ladder.position(rank) else None


def _parse_ladder(raw: str, period_days: int) -> Ladder:
    items = json.loads(raw)
    steps = tuple(
        RankStep(
            i["rank"],
            parse_amount(i["min_personal"], allow_zero=True),
            parse_amount(i["min_team"], allow_zero=True),
        )
        for i in items
    )
    if tuple(s.rank for s in steps) != RANK_ORDER:
        raise ValueError(f"DISTNET_RANK_LADDER must list the ranks {RANK_ORDER} in order")
    if steps[0].min_personal or steps[0].min_team:
        raise ValueError("member must have zero thresholds")
    return Ladder(steps=steps, period_days=period_days)


@lru_cache(maxsize=1)
def current_ladder() -> Ladder:
    configured = read_section(RankSettings)
    period, raw = configured.period_days, configured.ladder
    if raw:
        return _parse_ladder(raw, period)
    return Ladder(steps=DEFAULT_LADDER.steps, period_days=period)


def check_steps(steps: tuple[RankStep, ...]) -> list[dict[str, str]]:
    """Problems of a ladder (field, message): every rank once, in order, member at zero, thresholds
    that never fall from one rank to the next."""
    errors = []
    if tuple(s.rank for s in steps) != RANK_ORDER:
        errors.append(
            {"field": "steps", "message": f"the steps must list the ranks {', '.join(RANK_ORDER)} in order"}
        )
        return errors
    if steps[0].min_personal or steps[0].min_team:
        errors.append({"field": "steps[0]", "message": "member must have zero thresholds"})
    for i in range(1, len(steps)):
        if steps[i].min_personal < steps[i - 1].min_personal or steps[i].min_team < steps[i - 1].min_team:
            errors.append(
                {"field": f"steps[{i}]", "message": "a higher rank cannot need less than the rank below"}
            )
    return errors
