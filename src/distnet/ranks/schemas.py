from __future__ import annotations

import msgspec

from distnet.kit.contract import Money


class RankProgress(msgspec.Struct):
    rank: str
    next_rank: str | None
    period_days: int
    personal_sales: Money
    team_sales: Money
    personal_needed: Money
    team_needed: Money
    explanation: str


class LevelRate(msgspec.Struct):
    level: int
    rate_bps: int


class RankStep(msgspec.Struct):
    rank: str
    min_personal_sales: Money
    min_team_sales: Money
    rates: list[LevelRate]
    """What the rank earns per commission level under the plan in effect now."""


class RankLadder(msgspec.Struct):
    period_days: int
    rule: str
    plan_version: int | None
    items: list[RankStep]
