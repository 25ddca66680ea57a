"""Order brushing: orders too fast for a card, the same buyer again and again, distributors buying
from themselves or in a ring, refunds out of proportion, one buyer's share of a card's orders."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.money import format_amount
from distnet.risk import graph
from distnet.risk.brushing import OrderEvent, find_buyer_concentration
from distnet.risk.detectors.base import BuyerMatch, Finding, ScanContext, WindowGroup, card_owners, digest
from distnet.risk.rules import RuleConfig

_GROUP_COLS = {"buyer_ref": "buyer_ref_hash", "payment": "buyer_payment_hash", "device": "buyer_device_hash"}
"""fingerprint kind -> its orders column."""


def _window_needs(cfg: RuleConfig) -> tuple[int, int | None, dict[str, int]] | None:
    """What a rule reads from the shared window pass: (window days, least orders per card or None,
    least orders per (card, fingerprint kind))."""
    p = cfg.params
    if cfg.name == "order_velocity":
        return p["lookback_days"], p["max_orders"] + 1, {}
    if cfg.name == "repeat_buyer":
        return p["days"], None, dict.fromkeys(_GROUP_COLS, p["min_orders"])
    if cfg.name == "buyer_concentration":
        return p["lookback_days"], None, {"buyer_ref": max(1, math.ceil(p["min_ratio"]))}
    return None


async def window_groups(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[WindowGroup]:
    """Order counts per card and per (card, fingerprint) over a rule's window, with at least the
    rule's thresholds: one read of the window's orders, ``GROUPING SETS ((card_id), (card_id,
    buyer_ref_hash), (card_id, buyer_payment_hash), (card_id, buyer_device_hash))``. Within a scan
    (``scan.window_groups``) the first rule computes it for every scanned rule with the same window
    (order_velocity, repeat_buyer and buyer_concentration by default) at the least of their
    thresholds; each rule then filters by its own, so it sees exactly its own groups."""
    days = _window_needs(cfg)[0]  # type: ignore[index]
    if days in scan.window_groups:
        return scan.window_groups[days]
    needs = [_window_needs(cfg)] + [_window_needs(c) for c in scan.configs.values() if c.name != cfg.name]
    card_mins = [n[1] for n in needs if n is not None and n[0] == days and n[1] is not None]
    kind_mins: dict[str, int] = {}
    for n in needs:
        if n is not None and n[0] == days:
            for kind, m in n[2].items():
                kind_mins[kind] = min(m, kind_mins.get(kind, m))
    cols = {kind: col for kind, col in _GROUP_COLS.items() if kind in kind_mins}
    # GROUPING(col) = 0 on the rows of col's set; the card set aggregates over every fingerprint column
    label = (
        "CASE "
        + " ".join(f"WHEN GROUPING({col}) = 0 THEN '{kind}'" for kind, col in cols.items())
        + " ELSE 'card' END"
        if cols
        else "'card'"
    )
    sets: list[str] = []
    having: list[str] = []
    params: dict[str, Any] = {"days": timedelta(days=days)}
    if card_mins:
        sets.append("(card_id)")
        having.append(
            "("
            + " AND ".join([f"GROUPING({col}) = 1" for col in cols.values()] + ["count(*) >= :card_min"])
            + ")"
        )
        params["card_min"] = min(card_mins)
    for kind, col in cols.items():
        sets.append(f"(card_id, {col})")
        having.append(f"(GROUPING({col}) = 0 AND {col} IS NOT NULL AND count(*) >= :min_{kind})")
        params[f"min_{kind}"] = kind_mins[kind]
    h = f"coalesce({', '.join(cols.values())})" if cols else "CAST(NULL AS bytea)"
    rows = (
        await session.execute(
            text(f"""
        SELECT card_id, {label} AS kind, {h} AS h, count(*) AS n
          FROM orders WHERE placed_at >= now() - CAST(:days AS interval)
         GROUP BY GROUPING SETS ({", ".join(sets)})
        HAVING {" OR ".join(having)}
    """),
            params,
        )
    ).all()
    result = [WindowGroup(r.card_id, r.kind, bytes(r.h) if r.h is not None else None, int(r.n)) for r in rows]
    scan.window_groups[days] = result
    return result


async def order_velocity(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    w = timedelta(minutes=p["window_minutes"])
    cards = sorted(
        g.card_id
        for g in await window_groups(session, cfg, scan)
        if g.kind == "card" and g.n > p["max_orders"]
    )
    if not cards:
        return []
    rows = (
        await session.execute(
            text("""
        WITH cand AS (SELECT unnest(CAST(:cards AS bigint[])) AS card_id),
        win AS (SELECT o.card_id, o.placed_at,
                       count(*) OVER (PARTITION BY o.card_id ORDER BY o.placed_at
                                      RANGE BETWEEN CURRENT ROW AND CAST(:w AS interval) FOLLOWING) AS n
                  FROM orders o JOIN cand USING (card_id)
                 WHERE o.placed_at >= now() - CAST(:lookback AS interval))
        SELECT DISTINCT ON (card_id) card_id, placed_at AS t0, n FROM win WHERE n > :max
         ORDER BY card_id, n DESC, placed_at
    """),
            {"cards": cards, "lookback": timedelta(days=p["lookback_days"]), "max": p["max_orders"], "w": w},
        )
    ).all()
    return [await velocity_finding(session, cfg, r.card_id, r.t0, r.t0 + w) for r in rows]


async def velocity_finding(session: AsyncSession, cfg: RuleConfig, card_id: int, t0, t1) -> Finding:
    orders = (
        await session.execute(
            text(
                "SELECT id, seller_id FROM orders WHERE card_id = :c AND placed_at BETWEEN :t0 AND :t1 ORDER BY placed_at, id"
            ),
            {"c": card_id, "t0": t0, "t1": t1},
        )
    ).all()
    owner = (await card_owners(session, [card_id]))[card_id]
    ids = tuple(o.id for o in orders)
    return Finding(
        rule="order_velocity",
        anchor=f"card:{card_id}",
        subject_key=f"card:{card_id}:{digest(ids)}",
        score=len(ids) / cfg.params["max_orders"],
        hold_distributor_ids=(owner,),
        distributor_ids=(owner,),
        card_ids=(card_id,),
        order_ids=ids,
        evidence={
            "orders_in_window": len(ids),
            "window_start": t0.isoformat(),
            "window_end": t1.isoformat(),
            "max_orders": cfg.params["max_orders"],
        },
    )


async def repeat_buyer(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    # The window's (card, fingerprint) groups with >= min_orders come from the shared window pass
    # (counts only); order ids and the spread over cards are read for those groups only, by index
    # (card_id, placed_at) and hash.
    groups = sorted(
        (g.card_id, g.kind, g.h)
        for g in await window_groups(session, cfg, scan)
        if g.kind != "card" and g.n >= p["min_orders"]
    )
    if not groups:
        return []
    rows = (
        await session.execute(
            text("""
        WITH g AS (SELECT * FROM unnest(CAST(:c AS bigint[]), CAST(:k AS text[]), CAST(:h AS bytea[])) AS g(card_id, kind, h)),
        s AS (SELECT g.card_id, g.kind, g.h,
                     CASE g.kind
                       WHEN 'buyer_ref' THEN (SELECT count(DISTINCT x.card_id) FROM orders x WHERE x.buyer_ref_hash = g.h
                                                 AND x.placed_at >= now() - CAST(:days AS interval))
                       WHEN 'payment' THEN (SELECT count(DISTINCT x.card_id) FROM orders x WHERE x.buyer_payment_hash = g.h
                                               AND x.placed_at >= now() - CAST(:days AS interval))
                       ELSE (SELECT count(DISTINCT x.card_id) FROM orders x WHERE x.buyer_device_hash = g.h
                                AND x.placed_at >= now() - CAST(:days AS interval))
                     END AS cards
                FROM g)
        SELECT s.card_id, s.kind, encode(s.h, 'hex') AS h, s.cards,
               (SELECT array_agg(x.id ORDER BY x.id) FROM orders x
                 WHERE x.card_id = s.card_id AND x.placed_at >= now() - CAST(:days AS interval)
                   AND CASE s.kind WHEN 'buyer_ref' THEN x.buyer_ref_hash WHEN 'payment' THEN x.buyer_payment_hash
                                   ELSE x.buyer_device_hash END = s.h) AS ids
          FROM s WHERE s.cards <= :max_shared
         ORDER BY s.card_id, s.kind, s.h
    """),
            {
                "c": [g[0] for g in groups],
                "k": [g[1] for g in groups],
                "h": [g[2] for g in groups],
                "days": timedelta(days=p["days"]),
                "max_shared": p["max_shared"],
            },
        )
    ).all()
    owners = await card_owners(session, [r.card_id for r in rows])
    out = []
    for r in rows:
        key = f"card:{r.card_id}:{r.kind}:{r.h[:16]}"
        out.append(
            Finding(
                rule="repeat_buyer",
                anchor=key,
                subject_key=key,
                score=len(r.ids) / p["min_orders"],
                hold_distributor_ids=(owners[r.card_id],),
                distributor_ids=(owners[r.card_id],),
                card_ids=(r.card_id,),
                order_ids=tuple(r.ids),
                evidence={
                    "fingerprint": {"kind": r.kind, "hash": r.h[:16]},
                    "orders": len(r.ids),
                    "days": p["days"],
                    "cards_with_this_fingerprint": r.cards,
                    "graph": graph.evidence_graph(
                        [
                            {"id": owners[r.card_id], "type": "distributor", "flagged": True},
                            {"id": f"{r.kind}:{r.h[:16]}", "type": r.kind, "flagged": True},
                        ],
                        [
                            {
                                "source": f"{r.kind}:{r.h[:16]}",
                                "target": owners[r.card_id],
                                "relation": f"{len(r.ids)} orders",
                                "flagged": True,
                            }
                        ],
                    ),
                },
            )
        )
    return out


async def buyer_matches(session: AsyncSession, scan: ScanContext, lookback_days: int) -> list[BuyerMatch]:
    """Orders of the last ``lookback_days`` whose buyer device or payment fingerprint is some
    distributor's: the "distributor B bought from seller S" edges behind self purchase and circular
    orders. One scan of the window's orders, hash-joined to the distributor table on both hashes;
    share counts and upline levels are then looked up for the few matches only. Shared by the two
    rules within a scan (``scan.buyer_matches``, keyed by the window, so each rule reads exactly
    its own lookback); callers prune by their own ``max_shared`` (and amount) in Python."""
    if lookback_days in scan.buyer_matches:
        return scan.buyer_matches[lookback_days]
    rows = (
        await session.execute(
            text("""
        WITH j AS MATERIALIZED (
            SELECT o.id, o.card_id, o.seller_id, o.amount, o.placed_at, dd.id AS dev_d, dp.id AS pay_d,
                   o.buyer_device_hash, o.buyer_payment_hash
              FROM orders o
              LEFT JOIN distributor dd ON dd.device_hash = o.buyer_device_hash
              LEFT JOIN distributor dp ON dp.payment_hash = o.buyer_payment_hash
             WHERE o.placed_at >= now() - CAST(:lookback AS interval)
               AND (o.buyer_device_hash IS NOT NULL OR o.buyer_payment_hash IS NOT NULL)
               AND (dd.id IS NOT NULL OR dp.id IS NOT NULL)),
        m AS MATERIALIZED (
            SELECT id, card_id, seller_id, amount, placed_at, dev_d AS buyer_d, 'device' AS kind,
                   buyer_device_hash AS h FROM j WHERE dev_d IS NOT NULL
            UNION
            SELECT id, card_id, seller_id, amount, placed_at, pay_d, 'payment', buyer_payment_hash
              FROM j WHERE pay_d IS NOT NULL),
        hs AS (SELECT kind, h,
                      CASE kind WHEN 'device' THEN (SELECT count(*) FROM distributor x WHERE x.device_hash = hh.h)
                                ELSE (SELECT count(*) FROM distributor x WHERE x.payment_hash = hh.h) END AS shared
                 FROM (SELECT DISTINCT kind, h FROM m) hh)
        SELECT m.id, m.card_id, m.seller_id, m.amount, m.placed_at, m.buyer_d, m.kind, hs.shared, u.level
          FROM m JOIN hs ON hs.kind = m.kind AND hs.h = m.h
          LEFT JOIN distributor_upline u ON u.distributor_id = m.seller_id AND u.ancestor_id = m.buyer_d
    """),
            {"lookback": timedelta(days=lookback_days)},
        )
    ).all()
    result = [
        BuyerMatch(
            r.id,
            r.card_id,
            r.seller_id,
            int(r.amount),
            r.placed_at,
            r.buyer_d,
            r.kind,
            int(r.shared),
            r.level,
        )
        for r in rows
    ]
    scan.buyer_matches[lookback_days] = result
    return result


async def self_purchase(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    groups: dict[tuple[int, int, int, int], tuple[set[int], set[str]]] = {}
    for m in await buyer_matches(session, scan, p["lookback_days"]):
        if m.shared > p["max_shared"]:
            continue
        if m.buyer_d == m.seller_id:
            level = 0
        elif m.level is not None and m.level <= p["levels"]:
            level = m.level
        else:
            continue
        ids, kinds = groups.setdefault((m.card_id, m.seller_id, m.buyer_d, level), (set(), set()))
        ids.add(m.order_id)
        kinds.add(m.kind)
    return [
        self_purchase_finding(card_id, seller_id, buyer_d, level, sorted(ids), sorted(kinds))
        for (card_id, seller_id, buyer_d, level), (ids, kinds) in sorted(
            groups.items(), key=lambda kv: (kv[0][0], kv[0][2])
        )
    ]


def self_purchase_finding(
    card_id: int, seller_id: int, buyer_d: int, level: int, ids: list[int], kinds: list[str]
) -> Finding:
    key = f"card:{card_id}:buyer:{buyer_d}"
    who = sorted({seller_id, buyer_d})
    return Finding(
        rule="self_purchase",
        anchor=key,
        subject_key=key,
        score=float(len(ids)),
        hold_distributor_ids=(seller_id,),
        distributor_ids=tuple(who),
        card_ids=(card_id,),
        order_ids=tuple(ids),
        evidence={
            "seller": seller_id,
            "buyer_distributor": buyer_d,
            "buyer_level": level,
            "relation": "self" if level == 0 else f"upline_level_{level}",
            "matched_by": sorted(kinds),
            "graph": graph.evidence_graph(
                [{"id": d, "type": "distributor", "flagged": True} for d in who],
                (
                    [{"source": buyer_d, "target": seller_id, "relation": f"upline_level_{level}"}]
                    if level
                    else []
                )
                + [{"source": buyer_d, "target": seller_id, "relation": "bought_from", "flagged": True}],
            ),
        },
    )


async def circular_orders(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    min_amount = cfg.money("min_amount")
    edges: dict[tuple[int, int], set[int]] = {}
    for m in await buyer_matches(session, scan, p["lookback_days"]):
        if m.shared <= p["max_shared"] and m.amount >= min_amount and m.buyer_d != m.seller_id:
            edges.setdefault((m.buyer_d, m.seller_id), set()).add(m.order_id)
    orders_by_edge = {e: sorted(ids) for e, ids in edges.items()}
    return [
        cycle_finding(c, orders_by_edge)
        for c in graph.order_cycles(list(orders_by_edge), max_cycle=p["max_cycle"])
    ]


def cycle_finding(cycle: tuple[int, ...], orders_by_edge: dict[tuple[int, int], list[int]]) -> Finding:
    steps = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
    ids = tuple(sorted({i for e in steps for i in orders_by_edge.get(e, [])}))
    key = "cycle:" + ">".join(map(str, cycle))
    return Finding(
        rule="circular_orders",
        anchor=key,
        subject_key=key,
        score=float(len(cycle)),
        hold_distributor_ids=cycle,
        distributor_ids=tuple(sorted(cycle)),
        order_ids=ids,
        evidence=graph.cycle_evidence(cycle, orders_by_edge),
    )


async def refund_ratio(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    # one hash aggregate per card (counts and sums only); refunded order ids for qualifying cards only
    rows = (
        await session.execute(
            text("""
        WITH agg AS MATERIALIZED (
            SELECT card_id, count(*) AS n, sum(amount) AS sales, sum(refunded_amount) AS refunded FROM orders
             WHERE placed_at >= now() - CAST(:days AS interval)
             GROUP BY card_id
            HAVING count(*) FILTER (WHERE refunded_amount > 0) > 0 AND count(*) >= :min
               AND sum(refunded_amount) >= :ratio * sum(amount))
        SELECT agg.*, (SELECT array_agg(o.id ORDER BY o.id) FROM orders o
                        WHERE o.card_id = agg.card_id AND o.placed_at >= now() - CAST(:days AS interval)
                          AND o.refunded_amount > 0) AS ids
          FROM agg
    """),
            {"days": timedelta(days=p["days"]), "min": p["min_orders"], "ratio": p["ratio"]},
        )
    ).all()
    owners = await card_owners(session, [r.card_id for r in rows])
    out = []
    for r in rows:
        ratio = int(r.refunded) / int(r.sales)
        out.append(
            Finding(
                rule="refund_ratio",
                anchor=f"card:{r.card_id}",
                subject_key=f"card:{r.card_id}:{digest(r.ids)}",
                score=ratio / p["ratio"] if p["ratio"] else ratio,
                hold_distributor_ids=(owners[r.card_id],),
                distributor_ids=(owners[r.card_id],),
                card_ids=(r.card_id,),
                order_ids=tuple(r.ids),
                evidence={
                    "orders": int(r.n),
                    "sales": format_amount(int(r.sales)),
                    "refunded": format_amount(int(r.refunded)),
                    "ratio": round(ratio, 4),
                    "days": p["days"],
                },
            )
        )
    return out


async def buyer_concentration(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    window = timedelta(minutes=p["window_minutes"])
    # Pigeonhole prefilter: a rate >= r in an interval needs one buyer with >= ceil(r) orders in it,
    # so only cards with such a (card, buyer) pair over the lookback can brush.
    # (the (card, buyer) counts come from the shared window pass)
    need = max(1, math.ceil(p["min_ratio"]))
    cards = sorted(
        {g.card_id for g in await window_groups(session, cfg, scan) if g.kind == "buyer_ref" and g.n >= need}
    )
    if not cards:
        return []
    rows = (
        await session.execute(
            text("""
        WITH cand AS (SELECT unnest(CAST(:cards AS bigint[])) AS card_id)
        SELECT o.id, o.card_id, encode(o.buyer_ref_hash, 'hex') AS buyer, o.placed_at
          FROM orders o JOIN cand USING (card_id)
         WHERE o.placed_at >= now() - CAST(:lookback AS interval) AND o.buyer_ref_hash IS NOT NULL
         ORDER BY o.card_id, o.placed_at, o.id
    """),
            {"cards": cards, "lookback": timedelta(days=p["lookback_days"])},
        )
    ).all()
    events = [OrderEvent(r.id, r.card_id, r.buyer[:16], r.placed_at) for r in rows]
    findings = find_buyer_concentration(events, window=window, min_ratio=p["min_ratio"])
    owners = await card_owners(session, [f.card for f in findings])  # type: ignore[misc]
    by_card: dict[Any, list[OrderEvent]] = {}
    for e in events:  # one pass: the evidence graph of each finding reads only its card's orders
        by_card.setdefault(e.card, []).append(e)
    out = []
    for f in findings:
        card_id = int(f.card)
        ids = tuple(int(i) for i in f.order_ids)
        out.append(
            Finding(
                rule="buyer_concentration",
                anchor=f"card:{card_id}",
                subject_key=f"card:{card_id}:{digest(ids)}",
                score=f.max_ratio / p["min_ratio"],
                hold_distributor_ids=(owners[card_id],),
                distributor_ids=(owners[card_id],),
                card_ids=(card_id,),
                order_ids=ids,
                evidence={
                    "suspicious_buyers": list(f.suspicious_buyers),
                    "max_ratio": round(f.max_ratio, 4),
                    "intervals": [[a.isoformat(), b.isoformat()] for a, b in f.intervals],
                    "graph": _buyers_graph(owners[card_id], f.suspicious_buyers, by_card.get(f.card, [])),
                },
            )
        )
    return out


def _buyers_graph(seller: int, suspicious: Any, events: list[OrderEvent]) -> dict[str, Any]:
    """The card's buyers in the lookback (the suspicious ones flagged), each with its order count."""
    counts: dict[str, int] = {}
    for e in events:
        counts[e.buyer] = counts.get(e.buyer, 0) + 1
    flagged = set(suspicious)
    buyers = sorted(counts, key=lambda b: (b not in flagged, -counts[b], b))
    return graph.evidence_graph(
        [{"id": seller, "type": "distributor", "flagged": True}]
        + [{"id": f"buyer:{b}", "type": "buyer", "flagged": b in flagged} for b in buyers],
        [
            {
                "source": f"buyer:{b}",
                "target": seller,
                "relation": f"{counts[b]} orders",
                "flagged": b in flagged,
            }
            for b in buyers
        ],
    )
