"""Fake promotion: identifiers shared between distributors (self referral, identity clusters) and
recruits signed up in a burst by one sponsor."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.risk import graph
from distnet.risk.detectors.base import Finding, ScanContext, SharedIdentifier, digest
from distnet.risk.rules import RuleConfig

# identifiers of distributors as (distributor, kind, hash) rows; keyed hashes are per kind, so a
# phone never matches an IP
_IDENTS = """
    SELECT id AS d, 'device' AS kind, device_hash AS h FROM distributor
     WHERE device_hash IS NOT NULL AND status <> 'closed'
    UNION ALL SELECT id, 'phone', phone_hash FROM distributor WHERE phone_hash IS NOT NULL AND status <> 'closed'
    UNION ALL SELECT id, 'payment', payment_hash FROM distributor WHERE payment_hash IS NOT NULL AND status <> 'closed'
"""


async def shared_identifiers(
    session: AsyncSession, scan: ScanContext, max_shared: int
) -> list[SharedIdentifier]:
    """(distributor, kind, hash, holders) for every identifier (device, phone, payment, IP) of a
    non-closed distributor that 2..``max_shared`` non-closed distributors hold. self_referral and
    identity_cluster share it within a scan (``scan.shared_identifiers``): one read of the
    identifier set and one ``GROUP BY (kind, hash)``; a shared read with a cap >= ``max_shared`` is filtered in Python,
    a smaller cap reads again."""
    hit = scan.shared_identifiers
    if hit is not None and hit[0] >= max_shared:
        return [r for r in hit[1] if r[3] <= max_shared]
    rows = await session.execute(
        text(f"""
        WITH ident AS MATERIALIZED ({_IDENTS}
              UNION ALL SELECT id, 'ip', ip_hash FROM distributor WHERE ip_hash IS NOT NULL AND status <> 'closed'),
        shared AS (SELECT kind, h, count(*) AS n FROM ident GROUP BY kind, h HAVING count(*) BETWEEN 2 AND :max_shared)
        SELECT i.d, i.kind, i.h, s.n FROM ident i JOIN shared s ON s.kind = i.kind AND s.h = i.h
    """),
        {"max_shared": max_shared},
    )
    result = [(r.d, r.kind, bytes(r.h), int(r.n)) for r in rows]
    scan.shared_identifiers = (max_shared, result)
    return result


async def self_referral(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    # pairs of distributors sharing a device / phone / payment identifier (few), then the closure
    # rows for those pairs only: which one is the other's upline within ``levels``
    holders: dict[tuple[str, bytes], list[int]] = {}
    for d, kind, h, _ in await shared_identifiers(session, scan, p["max_shared"]):
        if kind != "ip":
            holders.setdefault((kind, h), []).append(d)
    shared_by_pair: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for (kind, h), ds in holders.items():
        for r in ds:
            for a in ds:
                if a != r:
                    shared_by_pair.setdefault((r, a), []).append((kind, h.hex()))
    if not shared_by_pair:
        return []
    pairs = list(shared_by_pair)
    rows = (
        await session.execute(
            text("""
        SELECT c.descendant_id AS recruit, c.ancestor_id AS ancestor, c.depth AS level
          FROM unnest(CAST(:r AS bigint[]), CAST(:a AS bigint[])) AS p(r, a)
          JOIN distributor_closure c ON c.ancestor_id = p.a AND c.descendant_id = p.r AND c.depth <= :levels
    """),
            {"r": [r for r, _ in pairs], "a": [a for _, a in pairs], "levels": p["levels"]},
        )
    ).all()
    out = []
    for row in sorted(rows, key=lambda x: (x.recruit, x.ancestor)):
        shared = sorted(shared_by_pair[(row.recruit, row.ancestor)])
        kinds = [k for k, _ in shared]
        hashes = [h for _, h in shared]
        out.append(self_referral_finding(row.recruit, row.ancestor, row.level, kinds, hashes))
    return out


def self_referral_finding(
    recruit: int, ancestor: int, level: int, kinds: list[str], hashes: list[str]
) -> Finding:
    ids = (recruit, ancestor)
    return Finding(
        rule="self_referral",
        anchor=f"recruit:{recruit}",
        subject_key=f"recruit:{recruit}:{ancestor}",
        score=float(len(kinds)),
        hold_distributor_ids=ids,
        distributor_ids=ids,
        evidence={
            "recruit": recruit,
            "ancestor": ancestor,
            "level": level,
            "shared_identifiers": [{"kind": k, "hash": h[:16]} for k, h in zip(kinds, hashes, strict=True)],
            "graph": graph.evidence_graph(
                [
                    {"id": recruit, "type": "distributor", "flagged": True},
                    {"id": ancestor, "type": "distributor", "flagged": True},
                ]
                + [
                    {"id": f"{k}:{h[:16]}", "type": k, "flagged": True}
                    for k, h in zip(kinds, hashes, strict=True)
                ],
                [{"source": ancestor, "target": recruit, "relation": f"sponsor_level_{level}"}]
                + [
                    {"source": d, "target": f"{k}:{h[:16]}", "relation": "holds", "flagged": True}
                    for k, h in zip(kinds, hashes, strict=True)
                    for d in ids
                ],
            ),
        },
    )


async def identity_cluster(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    links = [
        (d, kind, h.hex()[:16]) for d, kind, h, _ in await shared_identifiers(session, scan, p["max_shared"])
    ]
    out = []
    for cluster in graph.identity_clusters(links, min_size=p["min_size"]):
        out.append(
            Finding(
                rule="identity_cluster",
                anchor=f"cluster:{cluster.members[0]}",
                subject_key=f"cluster:{digest(cluster.members)}",
                score=float(len(cluster.members)),
                hold_distributor_ids=cluster.members,
                distributor_ids=cluster.members,
                evidence={"size": len(cluster.members), **graph.cluster_evidence(cluster)},
            )
        )
    return out


async def recruit_burst(session: AsyncSession, cfg: RuleConfig, scan: ScanContext) -> list[Finding]:
    p = cfg.params
    rows = await session.execute(
        text("""
        WITH cand AS (SELECT sponsor_id FROM distributor WHERE sponsor_id IS NOT NULL
                       GROUP BY sponsor_id HAVING count(*) >= :min),
        r AS (SELECT d.sponsor_id, d.joined_at,
                     count(*) OVER (PARTITION BY d.sponsor_id ORDER BY d.joined_at
                                    RANGE BETWEEN CURRENT ROW AND CAST(:w AS interval) FOLLOWING) AS n
                FROM distributor d JOIN cand USING (sponsor_id)),
        best AS (SELECT DISTINCT ON (sponsor_id) sponsor_id, joined_at AS t0, n FROM r WHERE n >= :min
                  ORDER BY sponsor_id, n DESC, joined_at)
        SELECT b.sponsor_id, b.t0, array_agg(d.id ORDER BY d.id) AS recruits,
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM orders o WHERE o.seller_id = d.id)) AS active
          FROM best b JOIN distributor d ON d.sponsor_id = b.sponsor_id
           AND d.joined_at BETWEEN b.t0 AND b.t0 + CAST(:w AS interval)
         GROUP BY b.sponsor_id, b.t0
    """),
        {"min": p["min_recruits"], "w": timedelta(minutes=p["window_minutes"])},
    )
    out = []
    for r in rows:
        share = r.active / len(r.recruits)
        if share > p["max_active_share"]:
            continue
        out.append(
            Finding(
                rule="recruit_burst",
                anchor=f"sponsor:{r.sponsor_id}",
                subject_key=f"sponsor:{r.sponsor_id}:{r.t0.isoformat()}",
                score=len(r.recruits) / p["min_recruits"],
                hold_distributor_ids=(r.sponsor_id,),
                distributor_ids=(r.sponsor_id, *r.recruits),
                evidence={
                    "sponsor": r.sponsor_id,
                    "recruits": list(r.recruits),
                    "window_start": r.t0.isoformat(),
                    "recruits_in_window": len(r.recruits),
                    "recruits_with_sales": r.active,
                    "active_share": round(share, 4),
                    "graph": graph.evidence_graph(
                        [{"id": r.sponsor_id, "type": "distributor", "flagged": True}]
                        + [{"id": d, "type": "distributor", "flagged": True} for d in r.recruits],
                        [{"source": r.sponsor_id, "target": d, "relation": "sponsored"} for d in r.recruits],
                    ),
                },
            )
        )
    return out
