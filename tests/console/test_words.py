"""Evidence in words and the stored evidence graph: pure functions, no hashes, capped graphs."""

from __future__ import annotations

from distnet.console.pictures import evidence_svg
from distnet.console.words import evidence_rows, names
from distnet.risk.graph import evidence_graph


class W:
    def __init__(self, name: str, code: str) -> None:
        self.name, self.code, self.card = name, code, None


def test_evidence_rows_name_people_and_hide_hashes():
    who = {1: W("张三", "AAAA1111"), 2: W("李四", "BBBB2222")}
    rows = dict(
        evidence_rows(
            {
                "recruit": 1,
                "ancestor": 2,
                "level": 1,
                "shared_identifiers": [{"kind": "device", "hash": "0123456789abcdef"}],
                "fingerprint": {"kind": "buyer_ref", "hash": "fedcba9876543210"},
                "suspicious_buyers": ["abcdef0123456789"],
                "cycle": [1, 2],
                "window_start": "2026-12-01T01:02:03+00:00",
                "graph": {"nodes": []},
                "rule": "x",
                "order_ids": [5, 6, 7],
            },
            name=names(who),
            when=lambda v: "WHEN",
        )
    )
    assert rows["Recruit"] == "张三 (AAAA1111)" and rows["Upline (sponsor side)"] == "李四 (BBBB2222)"
    assert rows["Shared identifiers"] == "1 shared (device)"
    assert rows["Buying cycle"] == "张三 (AAAA1111) → 李四 (BBBB2222) → 张三 (AAAA1111)"
    assert rows["Window from"] == "WHEN" and rows["Orders counted"] == "3 order(s), listed below"
    text = " ".join(rows.values())
    assert "0123456789abcdef" not in text and "fedcba" not in text and "abcdef0123" not in text
    assert "Graph" not in rows and "Rule" not in rows


def test_evidence_graph_keeps_flagged_nodes_first_and_caps():
    nodes = [{"id": i, "type": "distributor", "flagged": i >= 95} for i in range(100)]
    edges = [{"source": i, "target": i + 1} for i in range(99)]
    g = evidence_graph(nodes, edges, cap=10)
    assert [n["id"] for n in g["nodes"][:5]] == [95, 96, 97, 98, 99]
    assert len(g["nodes"]) == 10 and g["truncated"] == 90 and g["nodes_total"] == 100
    kept = {n["id"] for n in g["nodes"]}
    assert all(e["source"] in kept and e["target"] in kept for e in g["edges"])


def test_evidence_svg_draws_names_and_flags_without_hashes():
    g = evidence_graph(
        [
            {"id": 1, "type": "distributor", "flagged": True},
            {"id": "device:0123456789abcdef", "type": "device", "flagged": True},
            {"id": 2, "type": "distributor"},
        ],
        [{"source": 1, "target": "device:0123456789abcdef", "relation": "holds", "flagged": True}],
    )
    svg = evidence_svg(g, {1: W("王五", "CCCC3333"), 2: W("赵六", "DDDD4444")})
    assert svg and svg.startswith("<svg") and svg.count('class="node flagged"') == 2
    assert "王五" in svg and "device 1" in svg
    visible = svg.split("data-id=")  # ids live in attributes only, never in the drawn text
    assert all("0123456789abcdef" not in part.split(">", 1)[1] for part in visible[1:])
    assert evidence_svg(None, {}) is None
