"""Cheap per-order checks, run right after an order is accepted (``order.created`` handler): order
velocity of the card, self purchase, and short purchase cycles through the seller. Each is a few
index lookups, so brushing is caught within seconds of the order, not at the next scan.

Findings go through the same path as scans (modes, breaker, dedupe by subject and anchor)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.risk import repository as repo
from distnet.risk.detectors import Finding, brushing
from distnet.risk.graph import canonical_cycle
from distnet.risk.rules import Mode, RuleConfig, load_rules
from distnet.risk.scan import apply_finding

FRONTIER_CAP = 200
"""A seller who bought from hundreds of distributors is a shop, not a ring: stop expanding."""


async def _identity_of(session: AsyncSession, ids: list[int], max_shared: int) -> dict[str, list[bytes]]:
    """Device and payment hashes of ``ids``, minus those shared by more than ``max_shared`` people
    (each share count reads at most ``max_shared + 1`` index entries)."""
    rows = (
        await session.execute(
            repo.SHAREABLE_IDENTITY,
            {"ids": ids, "m": max_shared},
        )
    ).all()
    out: dict[str, list[bytes]] = {"device": [], "payment": []}
    for r in rows:
        out[r.kind].append(bytes(r.h))
    return out


async def velocity_finding(
    session: AsyncSession, cfg: RuleConfig, order, count: int | None = None
) -> Finding | None:
    w = timedelta(minutes=cfg.params["window_minutes"])
    if count is None:
        count = await session.scalar(
            repo.CARD_ORDERS_IN_WINDOW,
            {"c": order.card_id, "t0": order.placed_at - w, "t1": order.placed_at},
        )
    if int(count or 0) <= cfg.params["max_orders"]:
        return None
    return await brushing.velocity_finding(session, cfg, order.card_id, order.placed_at - w, order.placed_at)


async def self_purchase_findings(
    session: AsyncSession, cfg: RuleConfig, order, buyers: list[tuple[int, str, int | None]]
) -> list[Finding]:
    """``buyers``: (distributor, kind, level above the seller: 0 self, 1..3 upline, None) of the
    order's buyer fingerprints, already pruned by this rule's ``max_shared``."""
    levels = {b: lvl for b, _, lvl in buyers if lvl is not None and (lvl == 0 or lvl <= cfg.params["levels"])}
    out = []
    for buyer_d in sorted(levels):
        kinds = sorted({k for b, k, _ in buyers if b == buyer_d})
        ids = list(
            await session.scalars(
                repo.SELF_PURCHASE_ORDERS,
                {"b": buyer_d, "c": order.card_id, "lb": timedelta(days=cfg.params["lookback_days"])},
            )
        )
        out.append(
            brushing.self_purchase_finding(
                order.card_id, order.seller_id, buyer_d, levels[buyer_d], ids or [order.id], kinds
            )
        )
    return out


async def cycle_findings(
    session: AsyncSession, cfg: RuleConfig, order, buyers: list[tuple[int, str, int | None]]
) -> list[Finding]:
    """Cycles B → seller → ... → B through this order's edge, of at most ``max_cycle`` steps: a
    bounded breadth-first walk from the seller along "X bought from Y" edges. Runs only when the
    buyer is a distributor other than the seller (rare), so the common order costs no walk."""
    targets = {b for b, _, _ in buyers if b != order.seller_id}
    if not targets or order.amount < cfg.money("min_amount"):
        return []
    lookback = timedelta(days=cfg.params["lookback_days"])
    parent: dict[int, tuple[int, int]] = {}  # node -> (previous node, order id)
    frontier = [order.seller_id]
    seen = {order.seller_id}
    for _ in range(cfg.params["max_cycle"] - 1):
        idents = await _identity_of(session, frontier, cfg.params["max_shared"])
        if not idents["device"] and not idents["payment"]:
            break
        # two index scans (device, payment) instead of an OR that would scan every order
        rows = (
            await session.execute(
                repo.ORDERS_BOUGHT_BY,
                {
                    "frontier": frontier,
                    "dev": idents["device"],
                    "pay": idents["payment"],
                    "lb": lookback,
                    "min": cfg.money("min_amount"),
                },
            )
        ).all()
        nxt = []
        for r in rows:
            if r.buyer is None or r.seller_id in seen:
                continue
            seen.add(r.seller_id)
            parent[r.seller_id] = (r.buyer, r.id)
            nxt.append(r.seller_id)
        hit = sorted(targets & set(nxt))
        if hit:
            b = hit[0]
            path = [b]
            orders_by_edge: dict[tuple[int, int], list[int]] = {(b, order.seller_id): [order.id]}
            node = b
            while node != order.seller_id:
                prev, oid = parent[node]
                orders_by_edge[(prev, node)] = [oid]
                path.append(prev)
                node = prev
            # seller → X1 → ... → b along "bought from" edges, closed by this order's b → seller
            return [brushing.cycle_finding(canonical_cycle(list(reversed(path))), orders_by_edge)]
        frontier = nxt[:FRONTIER_CAP]
        if not frontier:
            break
    return []


async def check_order(
    session: AsyncSession, order_id: int, *, rules: dict[str, RuleConfig] | None = None
) -> list[int]:
    """Run the per-order checks for one order; returns the ids of cases opened. One statement
    (``repository.ORDER_CHECK``) answers the common case; more reads happen only for an actual finding or when the
    buyer is a distributor (cycle walk)."""
    rules = rules or await load_rules(session)
    velocity, sp, cyc = rules["order_velocity"], rules["self_purchase"], rules["circular_orders"]
    cap = max(sp.params["max_shared"], cyc.params["max_shared"])
    order = (
        await session.execute(
            repo.ORDER_CHECK,
            {
                "id": order_id,
                "cap": cap,
                "vel": velocity.mode != Mode.off,
                "w": timedelta(minutes=velocity.params["window_minutes"]),
            },
        )
    ).one_or_none()
    if order is None:
        return []
    findings: list[tuple[RuleConfig, Finding]] = []
    if velocity.mode != Mode.off and (f := await velocity_finding(session, velocity, order, order.velocity)):
        findings.append((velocity, f))
    matched = [(int(d), kind, int(shared), level) for d, kind, shared, level in order.buyers]
    if matched:
        if sp.mode != Mode.off:
            buyers = [(d, k, lvl) for d, k, shared, lvl in matched if shared <= sp.params["max_shared"]]
            findings += [(sp, f) for f in await self_purchase_findings(session, sp, order, buyers)]
        if cyc.mode != Mode.off:
            buyers = [(d, k, lvl) for d, k, shared, lvl in matched if shared <= cyc.params["max_shared"]]
            findings += [(cyc, f) for f in await cycle_findings(session, cyc, order, buyers)]
    opened = []
    for cfg, finding in findings:
        case_id, _ = await apply_finding(session, cfg, finding, scan_id=None)
        if case_id is not None:
            opened.append(case_id)
    return opened
