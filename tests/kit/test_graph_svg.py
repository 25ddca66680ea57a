"""The shared graph-to-SVG renderer: well-formed, self-contained, capped, flagged, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distnet.kit.graph_svg import FLAG_COLOUR, MORE_NODE_ID, GraphEdge, GraphNode, render_svg

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def drawn_nodes(root: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-id"): g for g in root.iterfind(".//s:g[@data-id]", NS)}


def hub(n: int) -> tuple[list[GraphNode], list[GraphEdge]]:
    nodes = [GraphNode("root", "张*", sublabel="AB23CD45", level=0)]
    nodes += [GraphNode(f"d{i}", f"李*{i}", level=1) for i in range(n)]
    return nodes, [GraphEdge("root", f"d{i}") for i in range(n)]


def test_tree_cap_draws_the_first_n_and_counts_the_rest():
    nodes, edges = hub(500)
    root = parse(render_svg(nodes, edges, max_nodes=20))
    drawn = drawn_nodes(root)
    assert len(drawn) == 21  # 20 nodes and the "+K more" node
    assert set(drawn) == {"root", *(f"d{i}" for i in range(19)), MORE_NODE_ID}
    more_text = "".join(drawn[MORE_NODE_ID].itertext())
    assert "+481 more" in more_text
    # the "+K more" node hangs from the hub that the hidden recruits hang from
    more_edges = [e for e in root.iterfind(".//s:line", NS) if e.get("data-target") == MORE_NODE_ID]
    assert [e.get("data-source") for e in more_edges] == ["root"]
    # every line joins two drawn nodes
    for line in root.iterfind(".//s:line", NS):
        assert line.get("data-source") in drawn and line.get("data-target") in drawn


def test_more_total_counts_nodes_the_caller_never_fetched():
    nodes, edges = hub(10)
    root = parse(render_svg(nodes, edges, max_nodes=50, more_total=99_990))
    drawn = drawn_nodes(root)
    assert len(drawn) == 12
    assert "+99,990 more" in "".join(drawn[MORE_NODE_ID].itertext())


def test_no_more_node_under_the_cap():
    nodes, edges = hub(5)
    assert MORE_NODE_ID not in drawn_nodes(parse(render_svg(nodes, edges, max_nodes=6)))


def test_tree_levels_top_to_bottom():
    nodes = [GraphNode("a", "A", level=0), GraphNode("b", "B", level=1), GraphNode("c", "C", level=2)]
    root = parse(render_svg(nodes, [GraphEdge("a", "b"), GraphEdge("b", "c")]))
    ys = {k: float(g.find("s:rect", NS).get("y")) for k, g in drawn_nodes(root).items()}
    assert ys["a"] < ys["b"] < ys["c"]


def test_levels_derived_from_edges_when_missing():
    nodes = [GraphNode("c", "C"), GraphNode("a", "A"), GraphNode("b", "B")]
    root = parse(render_svg(nodes, [GraphEdge("a", "b"), GraphEdge("b", "c")], layout="tree"))
    ys = {k: float(g.find("s:rect", NS).get("y")) for k, g in drawn_nodes(root).items()}
    assert ys["a"] < ys["b"] < ys["c"]


def test_wide_level_wraps_into_rows():
    nodes, edges = hub(40)
    root = parse(render_svg(nodes, edges, max_nodes=100))
    ys = {float(g.find("s:rect", NS).get("y")) for k, g in drawn_nodes(root).items() if k != "root"}
    assert len(ys) == 4  # 40 recruits in rows of 12


def test_flagged_nodes_and_edges_are_styled():
    nodes = [
        GraphNode("a", "A", flagged=True, group="distributor"),
        GraphNode("b", "B", group="distributor"),
        GraphNode("ip", "10.0.0.1", group="ip"),
    ]
    edges = [GraphEdge("a", "ip", flagged=True), GraphEdge("b", "ip")]
    root = parse(render_svg(nodes, edges, layout="graph"))
    drawn = drawn_nodes(root)
    assert "flagged" in drawn["a"].get("class").split()
    assert "flagged" not in drawn["b"].get("class").split()
    assert drawn["a"].find("s:rect", NS).get("stroke") == FLAG_COLOUR
    assert drawn["b"].find("s:rect", NS).get("stroke") != FLAG_COLOUR
    lines = {(e.get("data-source"), e.get("data-target")): e for e in root.iterfind(".//s:line", NS)}
    assert lines[("a", "ip")].get("stroke") == FLAG_COLOUR
    assert "flagged" in lines[("a", "ip")].get("class")
    assert lines[("b", "ip")].get("stroke") != FLAG_COLOUR
    # groups get their own colour
    assert drawn["ip"].find("s:rect", NS).get("stroke") != drawn["b"].find("s:rect", NS).get("stroke")


def test_graph_layout_is_deterministic():
    nodes = [GraphNode(str(i), f"n{i}") for i in range(12)]
    edges = [GraphEdge(str(i), str((i + 1) % 12)) for i in range(12)]
    assert render_svg(nodes, edges) == render_svg(nodes, edges)


def test_text_is_escaped_and_self_contained():
    evil = '<script>alert("x")</script> & \x00\x07 "quoted" \'single\''
    nodes = [GraphNode('"><x', evil, sublabel="</text><image href='http://evil'/>"), GraphNode("b", "王*")]
    svg = render_svg(nodes, [GraphEdge('"><x', "b", label="<b>&</b>")], title="<title>&")
    root = parse(svg)
    assert root.find(".//s:script", NS) is None
    assert root.find(".//s:image", NS) is None
    assert "<script>" not in svg and "http://evil'/>" not in svg
    texts = "".join(root.itertext())
    assert '<script>alert("x")</script>' in texts  # shown as text, not markup
    assert "\x00" not in svg and "\x07" not in svg
    # nothing is loaded from elsewhere
    for element in root.iter():
        for name, value in element.attrib.items():
            assert "http" not in value or name == "xmlns" or element.tag.endswith("svg"), (name, value)
        assert not any(name.endswith("href") for name in element.attrib)
    assert root.find(".//s:style", NS) is None and root.find(".//s:foreignObject", NS) is None


def test_cjk_font_stack_and_wide_labels_are_cut():
    root = parse(render_svg([GraphNode("a", "中" * 60)]))
    assert "Noto Sans CJK SC" in root.get("font-family")
    label = root.find(".//s:g[@data-id='a']/s:text", NS).text
    assert label.endswith("…") and len(label) < 20
    # the whole label stays readable as the node's tooltip
    assert root.find(".//s:g[@data-id='a']/s:title", NS).text == "中" * 60


def test_bad_cap_is_refused():
    with pytest.raises(ValueError):
        render_svg([GraphNode("a", "A")], max_nodes=0)


def test_empty_graph_is_a_valid_picture():
    parse(render_svg([]))


@given(
    labels=st.lists(st.text(max_size=30), min_size=1, max_size=25),
    cap=st.integers(min_value=1, max_value=30),
    flagged=st.sets(st.integers(min_value=0, max_value=24)),
)
def test_any_text_and_any_cap_give_well_formed_svg(labels, cap, flagged):
    nodes = [
        GraphNode(f"n{i}", text, sublabel=text[::-1], flagged=i in flagged, level=min(i, 3))
        for i, text in enumerate(labels)
    ]
    edges = [GraphEdge(f"n{max(0, i - 1)}", f"n{i}") for i in range(1, len(labels))]
    root = parse(render_svg(nodes, edges, max_nodes=cap))
    drawn = drawn_nodes(root)
    assert len(drawn) == min(cap, len(labels)) + (1 if len(labels) > cap else 0)
    flagged_drawn = {k for k, g in drawn.items() if "flagged" in g.get("class").split()}
    assert flagged_drawn == {f"n{i}" for i in flagged if i < min(cap, len(labels))}


def test_more_node_hangs_from_the_given_anchor_when_nothing_dropped_names_one():
    nodes, edges = hub(3)
    root = parse(render_svg(nodes, edges, more_total=10, more_level=1, more_anchor="root"))
    lines = [e for e in root.iterfind(".//s:line", NS) if e.get("data-target") == MORE_NODE_ID]
    assert [e.get("data-source") for e in lines] == ["root"]
