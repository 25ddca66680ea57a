"""Small graphs drawn as self-contained SVG on the server: a distributor's team (a tree by level),
a risk case's evidence (a ring of accounts and the fingerprints they share).

Pure computation, no I/O: ``render_svg(nodes, edges, ...)`` returns an SVG document as a string.
The document loads nothing (no fonts, images, scripts or stylesheets from anywhere), so a page can
inline it or serve it as ``image/svg+xml`` as it is. Text goes through ElementTree, which escapes it;
characters that XML 1.0 cannot carry at all (control characters) are dropped first.

A node cap keeps a picture readable and its cost bounded: the first ``max_nodes`` nodes (in the
order given) are drawn and the rest become one "+K more" node, tied to the drawn node that most of
them hang from. A hub with 100k recruits is drawn as its first N recruits and "+99,9xx more".
"""

from __future__ import annotations

import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

# Chinese first: the labels are mostly names like 张*; every viewer picks the first it has.
FONT_FAMILY = (
    "'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', 'Noto Sans CJK SC', 'Noto Sans SC', "
    "'Source Han Sans SC', 'WenQuanYi Micro Hei', 'Droid Sans Fallback', system-ui, "
    "-apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
)
MORE_NODE_ID = "__more__"

FONT_SIZE = 13
SUB_FONT_SIZE = 11
NODE_HEIGHT = 44
NODE_MIN_WIDTH = 72
NODE_MAX_WIDTH = 180
H_GAP = 16
V_GAP = 56
MARGIN = 20
#: a tree level wider than this many nodes is wrapped into rows (a hub's 200 recruits are not
#: drawn as one 30,000-pixel line)
ROW_LIMIT = 12

PALETTE = ("#4e79a7", "#59a14f", "#9c755f", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#bab0ac")
FLAG_COLOUR = "#d62728"
EDGE_COLOUR = "#8c8c8c"

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str
    sublabel: str | None = None
    flagged: bool = False
    #: colours nodes of one kind alike (e.g. "distributor", "device", "ip")
    group: str | None = None
    #: depth in a tree (0 = the root); used by the tree layout
    level: int | None = None


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    flagged: bool = False
    label: str | None = None


def render_svg(
    nodes: Sequence[GraphNode],
    edges: Iterable[GraphEdge] = (),
    *,
    max_nodes: int = 150,
    layout: Literal["auto", "tree", "graph"] = "auto",
    title: str | None = None,
    more_total: int | None = None,
    more_level: int | None = None,
    more_anchor: str | None = None,
) -> str:
    """The SVG document for a graph.

    ``layout="tree"`` stacks nodes by ``level`` (derived from the edges where missing), children
    under their parent; ``"graph"`` uses a force-directed layout (deterministic: fixed seed);
    ``"auto"`` picks tree when every node has a level. ``more_total`` is the number of nodes that
    exist beyond those passed in (a caller that fetched only the first N of 100k says how many it
    left out); they are counted in the "+K more" node with the ones the cap drops. The "+K more"
    node hangs from the drawn node most dropped nodes hang from, else from ``more_anchor``.
    """
    if max_nodes < 1:
        raise ValueError("max_nodes must be at least 1")
    nodes = _unique(nodes)
    edges = [e for e in edges if e.source != e.target]
    shown, hidden = list(nodes[:max_nodes]), list(nodes[max_nodes:])
    shown_ids = {n.id for n in shown}
    kept = [e for e in edges if e.source in shown_ids and e.target in shown_ids]
    extra = len(hidden) + max(0, more_total or 0)
    if layout == "auto":
        layout = "tree" if nodes and all(n.level is not None for n in nodes) else "graph"
    if extra:
        more, more_edge = _more_node(hidden, edges, shown_ids, extra, layout, more_level)
        if more_edge is None and more_anchor in shown_ids:
            more_edge = GraphEdge(source=more_anchor, target=MORE_NODE_ID)
        shown.append(more)
        if more_edge is not None:
            kept.append(more_edge)
    if layout == "tree":
        positions = _tree_positions(shown, kept)
    else:
        positions = _graph_positions(shown, kept)
    return _draw(shown, kept, positions, title)


# -- the cap ---------------------------------------------------------------------------------


def _unique(nodes: Sequence[GraphNode]) -> list[GraphNode]:
    seen: set[str] = set()
    out = []
    for node in nodes:
        if node.id not in seen and node.id != MORE_NODE_ID:
            seen.add(node.id)
            out.append(node)
    return out


def _more_node(
    hidden: list[GraphNode],
    edges: list[GraphEdge],
    shown_ids: set[str],
    extra: int,
    layout: str,
    more_level: int | None,
) -> tuple[GraphNode, GraphEdge | None]:
    hidden_ids = {n.id for n in hidden}
    anchors: Counter[str] = Counter()
    for edge in edges:
        if edge.source in shown_ids and edge.target in hidden_ids:
            anchors[edge.source] += 1
        elif edge.target in shown_ids and edge.source in hidden_ids:
            anchors[edge.target] += 1
    levels = [n.level for n in hidden if n.level is not None]
    level = min(levels) if levels else more_level
    if layout == "tree" and level is None:
        level = 1
    more = GraphNode(id=MORE_NODE_ID, label=f"+{extra:,} more", group=None, level=level)
    if anchors:
        return more, GraphEdge(source=anchors.most_common(1)[0][0], target=MORE_NODE_ID)
    return more, None


# -- layouts (centres of nodes, in pixels) -------------------------------------------------


def _tree_levels(nodes: list[GraphNode], edges: list[GraphEdge]) -> dict[str, int]:
    levels = {n.id: n.level for n in nodes if n.level is not None}
    if len(levels) == len(nodes):
        return levels  # type: ignore[return-value]
    children: dict[str, list[str]] = defaultdict(list)
    has_parent = set()
    for e in edges:
        children[e.source].append(e.target)
        has_parent.add(e.target)
    for n in nodes:
        if n.id not in has_parent:
            levels.setdefault(n.id, 0)
    frontier = list(levels)
    while frontier:
        nxt = []
        for node_id in frontier:
            for child in children[node_id]:
                if child not in levels:
                    levels[child] = levels[node_id] + 1
                    nxt.append(child)
        frontier = nxt
    for n in nodes:
        levels.setdefault(n.id, 0)  # inside a cycle with no way in: top row
    return levels  # type: ignore[return-value]


def _tree_positions(nodes: list[GraphNode], edges: list[GraphEdge]) -> dict[str, tuple[float, float]]:
    """Levels top to bottom; within a level, nodes follow their parents' order and wrap into rows of
    at most ROW_LIMIT. A parent is the first edge's source one level up."""
    levels = _tree_levels(nodes, edges)
    parent: dict[str, str] = {}
    for e in edges:
        if e.target not in parent and levels.get(e.source, -9) == levels.get(e.target, -9) - 1:
            parent[e.target] = e.source
    order = {n.id: i for i, n in enumerate(nodes)}
    by_level: dict[int, list[str]] = defaultdict(list)
    for n in nodes:
        by_level[levels[n.id]].append(n.id)
    slot_w = NODE_MAX_WIDTH + H_GAP
    rank: dict[str, float] = {}
    rows: list[list[str]] = []
    for level in sorted(by_level):
        members = sorted(by_level[level], key=lambda i: (rank.get(parent.get(i, ""), -1.0), order[i]))
        for at, node_id in enumerate(members):
            rank[node_id] = float(at)
        for start in range(0, len(members), ROW_LIMIT):
            rows.append(members[start : start + ROW_LIMIT])
    widest = max((len(r) for r in rows), default=1)
    positions = {}
    for y_index, row in enumerate(rows):
        offset = (widest - len(row)) * slot_w / 2
        for x_index, node_id in enumerate(row):
            positions[node_id] = (
                MARGIN + offset + x_index * slot_w + slot_w / 2,
                MARGIN + y_index * (NODE_HEIGHT + V_GAP) + NODE_HEIGHT / 2,
            )
    return positions


def _graph_positions(nodes: list[GraphNode], edges: list[GraphEdge]) -> dict[str, tuple[float, float]]:
    import networkx as nx  # only pictures of general graphs need it

    graph = nx.Graph()
    graph.add_nodes_from(n.id for n in nodes)
    graph.add_edges_from((e.source, e.target) for e in edges)
    if len(nodes) <= 1:
        raw = {n.id: (0.0, 0.0) for n in nodes}
    else:
        raw = nx.spring_layout(graph, seed=7, k=2.0 / math.sqrt(len(nodes)))
    # spread the unit square so that boxes of NODE_MAX_WIDTH rarely overlap
    side = max(2.0, math.sqrt(len(nodes))) * (NODE_MAX_WIDTH + H_GAP) * 0.8
    xs = [float(p[0]) for p in raw.values()] or [0.0]
    ys = [float(p[1]) for p in raw.values()] or [0.0]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    return {
        node_id: (
            MARGIN + NODE_MAX_WIDTH / 2 + (float(p[0]) - min(xs)) / span_x * side,
            MARGIN + NODE_HEIGHT / 2 + (float(p[1]) - min(ys)) / span_y * side * 0.7,
        )
        for node_id, p in raw.items()
    }


# -- drawing ---------------------------------------------------------------------------------


def _clean(text: str | None) -> str:
    return _XML_INVALID.sub("", text or "")


def _text_width(text: str, size: int) -> float:
    """Wide (CJK) characters take a full em, others about 0.6 em."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else size * 0.6 for ch in text)


def _fit(text: str, size: int, width: float) -> str:
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _node_width(node: GraphNode) -> float:
    wanted = (
        max(_text_width(_clean(node.label), FONT_SIZE), _text_width(_clean(node.sublabel), SUB_FONT_SIZE))
        + 16
    )
    return min(NODE_MAX_WIDTH, max(NODE_MIN_WIDTH, wanted))


def _group_colours(nodes: list[GraphNode]) -> dict[str | None, str]:
    colours: dict[str | None, str] = {None: PALETTE[0]}
    for n in nodes:
        if n.group is not None and n.group not in colours:
            colours[n.group] = PALETTE[(len(colours) - 1) % len(PALETTE)]
    return colours


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _draw(
    nodes: list[GraphNode],
    edges: list[GraphEdge],
    positions: dict[str, tuple[float, float]],
    title: str | None,
) -> str:
    width = max((x for x, _ in positions.values()), default=0) + NODE_MAX_WIDTH / 2 + MARGIN
    height = max((y for _, y in positions.values()), default=0) + NODE_HEIGHT / 2 + MARGIN
    title_space = 28 if title else 0
    height += title_space
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "width": _fmt(width),
            "height": _fmt(height),
            "viewBox": f"0 0 {_fmt(width)} {_fmt(height)}",
            "font-family": FONT_FAMILY,
            "font-size": str(FONT_SIZE),
            "role": "img",
        },
    )
    if title:
        ET.SubElement(svg, "title").text = _clean(title)
    defs = ET.SubElement(svg, "defs")
    for name, colour in (("arrow", EDGE_COLOUR), ("arrow-flagged", FLAG_COLOUR)):
        marker = ET.SubElement(
            defs,
            "marker",
            {
                "id": name,
                "viewBox": "0 0 10 10",
                "refX": "10",
                "refY": "5",
                "markerWidth": "7",
                "markerHeight": "7",
                "orient": "auto-start-reverse",
            },
        )
        ET.SubElement(marker, "path", {"d": "M 0 0 L 10 5 L 0 10 z", "fill": colour})
    if title:
        heading = ET.SubElement(
            svg, "text", {"x": _fmt(MARGIN), "y": _fmt(MARGIN + 4), "font-size": "15", "font-weight": "bold"}
        )
        heading.text = _clean(title)
    widths = {n.id: _node_width(n) for n in nodes}
    edge_layer = ET.SubElement(svg, "g", {"class": "edges"})
    for edge in edges:
        _draw_edge(edge_layer, edge, positions, widths, title_space)
    node_layer = ET.SubElement(svg, "g", {"class": "nodes"})
    colours = _group_colours(nodes)
    for node in nodes:
        x, y = positions[node.id]
        _draw_node(node_layer, node, x, y + title_space, widths[node.id], colours)
    return ET.tostring(svg, encoding="unicode")


def _box_exit(cx: float, cy: float, w: float, dx: float, dy: float) -> tuple[float, float]:
    """Where the ray from a box's centre towards (dx, dy) leaves the box."""
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (w / 2) / abs(dx) if dx else math.inf,
        (NODE_HEIGHT / 2) / abs(dy) if dy else math.inf,
    )
    return cx + dx * scale, cy + dy * scale


def _draw_edge(
    parent: ET.Element,
    edge: GraphEdge,
    positions: dict[str, tuple[float, float]],
    widths: dict[str, float],
    dy: float,
) -> None:
    (x1, y1), (x2, y2) = positions[edge.source], positions[edge.target]
    y1, y2 = y1 + dy, y2 + dy
    sx, sy = _box_exit(x1, y1, widths[edge.source], x2 - x1, y2 - y1)
    tx, ty = _box_exit(x2, y2, widths[edge.target], x1 - x2, y1 - y2)
    attrs = {
        "x1": _fmt(sx),
        "y1": _fmt(sy),
        "x2": _fmt(tx),
        "y2": _fmt(ty),
        "stroke": FLAG_COLOUR if edge.flagged else EDGE_COLOUR,
        "stroke-width": "2" if edge.flagged else "1.2",
        "marker-end": "url(#arrow-flagged)" if edge.flagged else "url(#arrow)",
        "class": "edge flagged" if edge.flagged else "edge",
        "data-source": _clean(edge.source),
        "data-target": _clean(edge.target),
    }
    if edge.target == MORE_NODE_ID:
        attrs["stroke-dasharray"] = "4 3"
    line = ET.SubElement(parent, "line", attrs)
    if edge.label:
        ET.SubElement(line, "title").text = _clean(edge.label)
        text = ET.SubElement(
            parent,
            "text",
            {
                "x": _fmt((sx + tx) / 2),
                "y": _fmt((sy + ty) / 2 - 3),
                "font-size": str(SUB_FONT_SIZE),
                "text-anchor": "middle",
                "fill": "#555",
            },
        )
        text.text = _fit(_clean(edge.label), SUB_FONT_SIZE, NODE_MAX_WIDTH)


def _draw_node(
    parent: ET.Element, node: GraphNode, x: float, y: float, w: float, colours: dict[str | None, str]
) -> None:
    is_more = node.id == MORE_NODE_ID
    classes = ["node"] + (["flagged"] if node.flagged else []) + (["more"] if is_more else [])
    group = ET.SubElement(parent, "g", {"class": " ".join(classes), "data-id": _clean(node.id)})
    full = _clean(node.label) + (f" ({_clean(node.sublabel)})" if node.sublabel else "")
    ET.SubElement(group, "title").text = full
    colour = colours.get(node.group, PALETTE[0])
    rect = {
        "x": _fmt(x - w / 2),
        "y": _fmt(y - NODE_HEIGHT / 2),
        "width": _fmt(w),
        "height": str(NODE_HEIGHT),
        "rx": "6",
        "fill": "#f4f4f4" if is_more else "#ffffff",
        "stroke": FLAG_COLOUR if node.flagged else ("#999999" if is_more else colour),
        "stroke-width": "3" if node.flagged else "1.5",
    }
    if is_more:
        rect["stroke-dasharray"] = "4 3"
    if node.flagged:
        rect["fill"] = "#fdecea"
    ET.SubElement(group, "rect", rect)
    inner = w - 12
    label_y = y - 3 if node.sublabel else y + FONT_SIZE / 3
    label = ET.SubElement(
        group,
        "text",
        {
            "x": _fmt(x),
            "y": _fmt(label_y),
            "text-anchor": "middle",
            "fill": FLAG_COLOUR if node.flagged else "#222222",
            "font-weight": "bold" if node.flagged else "normal",
        },
    )
    label.text = _fit(_clean(node.label), FONT_SIZE, inner)
    if node.sublabel:
        sub = ET.SubElement(
            group,
            "text",
            {
                "x": _fmt(x),
                "y": _fmt(y + 13),
                "text-anchor": "middle",
                "font-size": str(SUB_FONT_SIZE),
                "fill": "#666666",
            },
        )
        sub.text = _fit(_clean(node.sublabel), SUB_FONT_SIZE, inner)
