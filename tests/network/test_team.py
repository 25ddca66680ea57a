"""A distributor's team as their upline may see it (DESIGN invariant 10): code, masked name, rank and
the member's net sales for the period, never contact or payout data; and the team as a picture."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.kit.graph_svg import MORE_NODE_ID
from tests.factories import auth, register
from tests.orders.helpers import place, refund

NS = {"s": "http://www.w3.org/2000/svg"}


async def test_downline_entries_show_masked_names_rank_and_period_sales(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    owner = await register(client, sponsor=root, name="赵大", phone="+8613700000001")
    kid = await register(
        client,
        sponsor=owner,
        name="钱二小",
        phone="+8613700000002",
        bank_account="6222-0001",
        device_id="dev-kid",
        ip="10.1.1.1",
    )
    grandkid = await register(client, sponsor=kid, name="孙三")
    sold = await place(client, kid, "100.00")
    await refund(client, sold, "30.00", auth(kid))
    await place(client, kid, "5.00", placed_at=(datetime.now(UTC) - timedelta(days=70)).isoformat())
    resp = await client.get(f"/api/v1/distributors/{owner['id']}/downline?max_depth=3", headers=auth(owner))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    entries = {e["code"]: e for e in body["items"]}
    assert entries[kid["code"]]["name"] == "钱*" and entries[grandkid["code"]]["name"] == "孙*"
    assert entries[kid["code"]]["sales"] == "70.00"  # this month, net of the refund; the old sale is outside
    assert entries[grandkid["code"]]["sales"] == "0.00"
    assert entries[kid["code"]]["rank"] == "member" and entries[kid["code"]]["level"] == 1
    for e in body["items"]:
        assert set(e) == {"id", "code", "name", "level", "rank", "joined_at", "sales"}
    for leaked in ("钱二小", "孙三", "13700000002", "6222", "dev-kid", "10.1.1.1"):
        assert leaked not in resp.text, leaked
    # an explicit period that holds the old sale only
    old = await client.get(
        f"/api/v1/distributors/{owner['id']}/downline",
        headers=auth(owner),
        params={
            "from": (datetime.now(UTC) - timedelta(days=71)).isoformat(),
            "to": (datetime.now(UTC) - timedelta(days=69)).isoformat(),
        },
    )
    assert {e["code"]: e["sales"] for e in old.json()["items"]}[kid["code"]] == "5.00"
    bad = await client.get(
        f"/api/v1/distributors/{owner['id']}/downline",
        headers=auth(owner),
        params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    )
    assert bad.status_code == 422 and "to" in bad.text


async def test_team_picture_is_svg_with_masked_names(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    owner = await register(client, sponsor=root, name="Owner")
    kids = [await register(client, sponsor=owner, name=f"李{i}号") for i in range(3)]
    grandkid = await register(client, sponsor=kids[0], name="周某")
    resp = await client.get(f"/api/v1/distributors/{owner['id']}/downline.svg?depth=2", headers=auth(owner))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("image/svg+xml")
    svg = ET.fromstring(resp.text)
    drawn = {g.get("data-id") for g in svg.iterfind(".//s:g[@data-id]", NS)}
    assert drawn == {str(owner["id"]), *(str(k["id"]) for k in kids), str(grandkid["id"])}
    edges = {(e.get("data-source"), e.get("data-target")) for e in svg.iterfind(".//s:line", NS)}
    assert (str(kids[0]["id"]), str(grandkid["id"])) in edges
    assert "李*" in resp.text and "李0号" not in resp.text and "周某" not in resp.text
    depth1 = ET.fromstring(
        (await client.get(f"/api/v1/distributors/{owner['id']}/downline.svg", headers=auth(owner))).text
    )
    assert len(list(depth1.iterfind(".//s:g[@data-id]", NS))) == 4
    for bad in ("0", "4", "x"):
        resp = await client.get(
            f"/api/v1/distributors/{owner['id']}/downline.svg?depth={bad}", headers=auth(owner)
        )
        assert resp.status_code in (400, 422) and "depth" in resp.text
    other = await register(client, sponsor=root, name="Other")
    assert (
        await client.get(f"/api/v1/distributors/{owner['id']}/downline.svg", headers=auth(other))
    ).status_code == 404


async def test_hub_picture_draws_the_cap_and_counts_the_rest(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    hub = await register(client, sponsor=root, name="Hub")
    # 400 recruits written straight into the forest tables (registration through the API is slow)
    await session.execute(
        text("""
        WITH ids AS (
            SELECT nextval(pg_get_serial_sequence('distributor', 'id')) AS id, g FROM generate_series(1, 400) g
        ), new AS (
            INSERT INTO distributor (id, code, name, sponsor_id, depth, path)
            SELECT ids.id, 'H' || lpad(ids.g::text, 7, '0'), '成员' || ids.g, :hub, h.depth + 1,
                   CAST(h.path::text || '.' || ids.id AS ltree)
              FROM ids, distributor h WHERE h.id = :hub
            RETURNING id
        ), up AS (
            INSERT INTO distributor_upline (distributor_id, level, ancestor_id)
            SELECT id, 1, :hub FROM new UNION ALL SELECT id, 2, :root FROM new RETURNING 1
        )
        INSERT INTO distributor_closure (ancestor_id, depth, descendant_id)
        SELECT :hub, 1, id FROM new UNION ALL SELECT :root, 2, id FROM new
    """),
        {"hub": hub["id"], "root": root["id"]},
    )
    await session.commit()
    resp = await client.get(f"/api/v1/distributors/{hub['id']}/downline.svg?depth=1", headers=auth(hub))
    assert resp.status_code == 200, resp.text
    svg = ET.fromstring(resp.text)
    groups = {g.get("data-id"): g for g in svg.iterfind(".//s:g[@data-id]", NS)}
    assert len(groups) == 1 + 150 + 1  # the hub, the first 150 recruits, "+250 more"
    assert "+250 more" in "".join(groups[MORE_NODE_ID].itertext())
    assert "400 members" in resp.text
    assert "成员1" not in resp.text  # masked
