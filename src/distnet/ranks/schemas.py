from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from distnet.kit.contract import Money

Amount = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]


class LadderStepIn(msgspec.Struct, forbid_unknown_fields=True):
    rank: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    min_personal: Amount
    min_team: Amount = "0.00"


class LadderCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    steps: Annotated[list[LadderStepIn], msgspec.Meta(min_length=1, max_length=10)]
    period_days: Annotated[int, msgspec.Meta(ge=1, le=3660)] = 90
    effective_from: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class LadderStep(msgspec.Struct):
    rank: str
    min_personal: str
    min_team: str


class LadderVersion(msgspec.Struct):
    version: int
    """0 is the built-in (or ``DISTNET_RANK_LADDER``) default, in effect until a stored version is."""
    name: str
    period_days: int
    effective_from: datetime | None
    created_by: str | None
    active: bool
    steps: list[LadderStep]


class LadderVersions(msgspec.Struct):
    items: list[LadderVersion]
    active_version: int


class RankCorrection(msgspec.Struct, forbid_unknown_fields=True):
    rank: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]


class RankCorrected(msgspec.Struct):
    distributor_id: int
    previous_rank: str
    rank: str
    rank_since: datetime
    reason: str
    note: str


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
    ladder_version: int
    rule: str
    plan_version: int | None
    items: list[RankStep]
