"""What every detector shares: the ``Finding`` it returns, the ``ScanContext`` it reads shared rows
from, and small lookups.

Subject keys name the finding with its evidence (repeated scans never duplicate a case; a cleared
finding is not raised again for the same evidence); anchors name what it is about (a card, a
sponsor), so that growing evidence opens no second case while one is open or its hold is active.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.risk.rules import RuleConfig


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    anchor: str
    subject_key: str
    score: float
    hold_distributor_ids: tuple[int, ...]
    """Whom enforcement suspends."""
    distributor_ids: tuple[int, ...] = ()
    card_ids: tuple[int, ...] = ()
    order_ids: tuple[int, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


SharedIdentifier = tuple[int, str, bytes, int]
"""(distributor, kind, hash, holders): an identifier (device, phone, payment, IP hash) that 2..cap
non-closed distributors hold."""


@dataclass(frozen=True, slots=True)
class WindowGroup:
    card_id: int
    kind: str
    """"card" (all of the card's orders in the window) or a fingerprint kind: "buyer_ref",
    "payment", "device"."""
    h: bytes | None
    n: int


@dataclass(frozen=True, slots=True)
class BuyerMatch:
    order_id: int
    card_id: int
    seller_id: int
    amount: int
    placed_at: Any
    buyer_d: int
    kind: str
    shared: int
    """How many distributors (any status) hold this fingerprint: pruned above a rule's max_shared."""
    level: int | None
    """The buyer's upline level above the seller (1..3), None if not within 3 levels."""


@dataclass(slots=True)
class ScanContext:
    """Rows read once per scan and shared by its detectors: self_referral and identity_cluster
    share the identifier set; order_velocity, repeat_buyer and buyer_concentration the window's
    order counts (computed for every scanned rule's config, so ``configs`` names them);
    self_purchase and circular_orders the buyer-is-a-distributor matches. One scan is one
    transaction with one ``now()``, so the rows stay true for its length; the context dies with it.
    A detector run on its own gets ``ScanContext.alone(cfg)``."""

    configs: Mapping[str, RuleConfig]
    """The rules this scan runs, by name."""
    shared_identifiers: tuple[int, list[SharedIdentifier]] | None = None
    """(the cap they were read with, the rows)."""
    window_groups: dict[int, list[WindowGroup]] = field(default_factory=dict)
    """By window in days."""
    buyer_matches: dict[int, list[BuyerMatch]] = field(default_factory=dict)
    """By lookback in days."""

    @classmethod
    def alone(cls, cfg: RuleConfig) -> ScanContext:
        return cls(configs={cfg.name: cfg})


def digest(values: Iterable[object]) -> str:
    return hashlib.sha256(",".join(str(v) for v in values).encode()).hexdigest()[:16]


async def card_owners(session: AsyncSession, card_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(card_ids))
    if not ids:
        return {}
    rows = await session.execute(
        text("SELECT id, distributor_id FROM card WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": ids}
    )
    return {r.id: r.distributor_id for r in rows}
