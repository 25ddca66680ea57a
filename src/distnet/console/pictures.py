"""A case's stored evidence graph drawn as SVG by the one shared renderer (``kit.graph_svg``):
people by name and code, fingerprints by kind and number (never their hashes), the flagged part
in red."""

from __future__ import annotations

from typing import Any

from distnet.kit.graph_svg import GraphEdge, GraphNode, render_svg

MAX_DRAWN = 40


def evidence_svg(
    graph: dict[str, Any] | None, who: dict[int, Any], *, title: str | None = None
) -> str | None:
    if not graph or not graph.get("nodes"):
        return None
    numbers: dict[str, int] = {}
    nodes = []
    for n in graph["nodes"]:
        nodes.append(_node(n, who, numbers))
    edges = [
        GraphEdge(
            source=str(e["source"]),
            target=str(e["target"]),
            flagged=bool(e.get("flagged")),
            label=str(e.get("relation", "")).replace("_", " ") or None,
        )
        for e in graph.get("edges", [])
    ]
    return render_svg(
        nodes,
        edges,
        max_nodes=MAX_DRAWN,
        layout="graph",
        title=title,
        more_total=int(graph.get("truncated") or 0),
    )


def _node(n: dict[str, Any], who: dict[int, Any], numbers: dict[str, int]) -> GraphNode:
    kind = str(n.get("type", "distributor"))
    flagged = bool(n.get("flagged"))
    if kind == "distributor" and isinstance(n["id"], int):
        w = who.get(n["id"])
        label, sub = (w.name, w.code) if w is not None else ("closed account", None)
    else:
        numbers[kind] = numbers.get(kind, 0) + 1
        label, sub = (
            f"{kind.replace('_', ' ')} {numbers[kind]}",
            "shared" if kind != "buyer" else ("suspicious" if flagged else None),
        )
    return GraphNode(id=str(n["id"]), label=label, sublabel=sub, flagged=flagged, group=kind)


def distributor_ids(graph: dict[str, Any] | None) -> set[int]:
    return {n["id"] for n in (graph or {}).get("nodes", []) if isinstance(n.get("id"), int)}
