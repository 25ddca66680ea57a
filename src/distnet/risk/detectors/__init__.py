"""The detectors: each reads what it needs with a few set-based statements, then decides in Python
on a small candidate set. One function per rule of API.md's table, ``async def (session, cfg,
scan) -> list[Finding]``, by concern: ``identity`` (fake promotion), ``brushing`` (orders),
``debt``. The scan (``risk.scan``) passes one ``ScanContext`` to all of them and turns findings
into cases and holds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.risk.detectors import brushing, debt, identity
from distnet.risk.detectors.base import Finding, ScanContext
from distnet.risk.rules import RuleConfig

Detector = Callable[[AsyncSession, RuleConfig, ScanContext], Awaitable[list[Finding]]]

DETECTORS: dict[str, Detector] = {
    "self_referral": identity.self_referral,
    "identity_cluster": identity.identity_cluster,
    "recruit_burst": identity.recruit_burst,
    "order_velocity": brushing.order_velocity,
    "repeat_buyer": brushing.repeat_buyer,
    "self_purchase": brushing.self_purchase,
    "circular_orders": brushing.circular_orders,
    "refund_ratio": brushing.refund_ratio,
    "buyer_concentration": brushing.buyer_concentration,
    "unpaid_balance": debt.unpaid_balance,
}

__all__ = ["DETECTORS", "Detector", "Finding", "ScanContext"]
