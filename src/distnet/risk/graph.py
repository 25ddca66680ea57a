"""Graph work of the detectors, pure (no I/O).

Whole-graph questions (which distributors are linked by shared identifiers, which buy from each
other in strongly connected groups) run on integer edge arrays with ``scipy.sparse.csgraph``, which
handles millions of edges in C. networkx only sees the small pieces that become a case's evidence
(a cluster's links, a cycle's path), where its readable algorithms cost nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True, slots=True)
class Cluster:
    members: tuple[int, ...]
    """Distributor ids, sorted."""
    identifiers: tuple[tuple[str, str], ...]
    """(kind, hash prefix) of the identifiers that link them."""
    edges: tuple[tuple[int, str], ...]
    """(distributor, "kind:hash") links of the cluster."""


def identity_clusters(links: Sequence[tuple[int, str, str]], *, min_size: int) -> list[Cluster]:
    """Clusters of distributors linked through shared identifiers.

    ``links``: (distributor id, kind, identifier) rows, already pruned of identifiers shared by very
    many distributors (a carrier IP would otherwise join everyone). The bipartite graph distributor
    ↔ identifier is labelled with scipy's connected components; components with at least
    ``min_size`` distributors come back, largest first."""
    if not links:
        return []
    dist_index: dict[int, int] = {}
    ident_index: dict[tuple[str, str], int] = {}
    rows = np.empty(len(links), dtype=np.int64)
    cols = np.empty(len(links), dtype=np.int64)
    for i, (d, kind, ident) in enumerate(links):
        rows[i] = dist_index.setdefault(d, len(dist_index))
        cols[i] = ident_index.setdefault((kind, ident), len(ident_index))
    n_d = len(dist_index)
    n = n_d + len(ident_index)
    graph = coo_matrix((np.ones(len(links), dtype=np.int8), (rows, cols + n_d)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    dist_ids = np.fromiter(dist_index.keys(), dtype=np.int64, count=n_d)
    dist_labels = labels[:n_d]
    counts = np.bincount(dist_labels)
    big = set(np.nonzero(counts >= min_size)[0].tolist())
    if not big:
        return []
    members_of: dict[int, list[int]] = defaultdict(list)
    for d, label in zip(dist_ids.tolist(), dist_labels.tolist(), strict=True):
        if label in big:
            members_of[label].append(d)
    clusters = []
    for members in members_of.values():
        member_set = set(members)
        sub = nx.Graph()
        for d, kind, ident in links:
            if d in member_set:
                sub.add_edge(d, f"{kind}:{ident}")
        # the identifiers that actually link two or more members (the rest are incidental)
        shared = sorted(n for n in sub.nodes if isinstance(n, str) and sub.degree(n) >= 2)
        clusters.append(
            Cluster(
                members=tuple(sorted(members)),
                identifiers=tuple(tuple(s.split(":", 1)) for s in shared),  # type: ignore[misc]
                edges=tuple(sorted((d, s) for s in shared for d in sub.neighbors(s))),
            )
        )
    clusters.sort(key=lambda c: (-len(c.members), c.members))
    return clusters


def cluster_evidence(cluster: Cluster) -> dict[str, Any]:
    return {
        "graph": evidence_graph(
            [{"id": d, "type": "distributor", "flagged": True} for d in cluster.members]
            + [{"id": f"{k}:{h}", "type": k, "flagged": True} for k, h in cluster.identifiers],
            [
                {"source": d, "target": ident, "relation": "holds", "flagged": True}
                for d, ident in cluster.edges
            ],
        ),
        "shared_identifiers": [{"kind": k, "hash": h} for k, h in cluster.identifiers],
    }


def canonical_cycle(nodes: Sequence[int]) -> tuple[int, ...]:
    """The rotation that starts at the smallest id: one name per cycle, however it was found."""
    i = min(range(len(nodes)), key=lambda k: nodes[k])
    return tuple(nodes[i:]) + tuple(nodes[:i])


def order_cycles(
    edges: Sequence[tuple[int, int]], *, max_cycle: int, limit_per_component: int = 100
) -> list[tuple[int, ...]]:
    """Directed cycles of length 2..``max_cycle`` in the buyer → seller graph.

    Only strongly connected components of two or more nodes can hold a cycle; scipy finds them on
    the whole graph, networkx enumerates the bounded cycles inside each small one."""
    pairs = {(a, b) for a, b in edges if a != b}
    if not pairs:
        return []
    index: dict[int, int] = {}
    src = np.fromiter((index.setdefault(a, len(index)) for a, _ in pairs), dtype=np.int64, count=len(pairs))
    dst = np.fromiter((index.setdefault(b, len(index)) for _, b in pairs), dtype=np.int64, count=len(pairs))
    n = len(index)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="strong")
    counts = np.bincount(labels)
    ids = np.fromiter(index.keys(), dtype=np.int64, count=n)
    groups: dict[int, set[int]] = defaultdict(set)
    for node, label in zip(ids.tolist(), labels.tolist(), strict=True):
        if counts[label] >= 2:
            groups[label].add(node)
    found: set[tuple[int, ...]] = set()
    for members in groups.values():
        sub = nx.DiGraph([(a, b) for a, b in pairs if a in members and b in members])
        for k, cycle in enumerate(nx.simple_cycles(sub, length_bound=max_cycle)):
            if k >= limit_per_component:
                break
            found.add(canonical_cycle(cycle))
    return sorted(found)


def cycle_evidence(
    cycle: tuple[int, ...], orders_by_edge: dict[tuple[int, int], list[int]]
) -> dict[str, Any]:
    steps = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
    return {
        "cycle": list(cycle),
        "graph": evidence_graph(
            [{"id": d, "type": "distributor", "flagged": True} for d in cycle],
            [
                {
                    "source": a,
                    "target": b,
                    "relation": "bought_from",
                    "flagged": True,
                    "order_ids": orders_by_edge.get((a, b), []),
                }
                for a, b in steps
            ],
        ),
    }


MAX_EVIDENCE_NODES = 60
"""A case keeps at most this many nodes of its evidence graph (flagged ones first): enough to draw
and read; a 5,000-member cluster is a count, not a picture."""


def evidence_graph(
    nodes: Sequence[dict[str, Any]], edges: Sequence[dict[str, Any]], *, cap: int = MAX_EVIDENCE_NODES
) -> dict[str, Any]:
    """The stored form of a case's evidence graph: nodes (``id``, ``type``, ``flagged``), edges
    (``source``, ``target``, ``relation``, ``flagged``) between kept nodes, and how many nodes
    were left out. The flagged part is what the rule found; the rest is context. Flagged nodes are
    kept first, each group in the order given."""
    unique: dict[Any, dict[str, Any]] = {}
    for n in nodes:
        unique.setdefault(n["id"], {"flagged": False, **n})
    ordered = sorted(unique.values(), key=lambda n: not n["flagged"])
    kept = ordered[:cap]
    ids = {n["id"] for n in kept}
    kept_edges = [{"flagged": False, **e} for e in edges if e["source"] in ids and e["target"] in ids]
    return {
        "nodes": kept,
        "edges": kept_edges,
        "nodes_total": len(ordered),
        "truncated": len(ordered) - len(kept),
    }
