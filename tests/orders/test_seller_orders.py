"""A seller's own orders (GET /me/orders, /distributors/{id}/orders) and buyer references kept
readable (encrypted beside the keyed hash) on every ingest path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.kit.crypto import decrypt
from distnet.orders.importer import import_csv
from tests.factories import auth, register
from tests.orders.helpers import order_body, place, refund


async def _all_pages(client, path, headers, **params):
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(path, headers=headers, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_own_orders_with_commissions_refunds_and_masked_upline(client, admin_headers, session):
    root = await register(client, admin_headers, name="根")
    a = await register(client, sponsor=root, name="张三丰", phone="+8613800000001")
    b = await register(client, sponsor=a, name="李四", phone="+8613800000002")
    c = await register(client, sponsor=b, name="王五")
    now = datetime.now(UTC)
    first = await place(
        client, c, "100.00", placed_at=(now - timedelta(days=2)).isoformat(), buyer={"ref": "会员 0042"}
    )
    second = await place(client, c, "50.00", placed_at=(now - timedelta(days=1)).isoformat())
    await refund(client, second, "20.00", auth(c), external_id="rf-half")
    await place(client, b, "30.00")  # b's own sale: not c's

    resp = await client.get("/api/v1/me/orders", headers=auth(c))
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert [o["id"] for o in page["items"]] == [second["id"], first["id"]]  # newest first
    assert page["next_cursor"] is None
    newest, oldest = page["items"]
    assert newest["status"] == "partially_refunded" and newest["refunded_amount"] == "20.00"
    assert newest["remaining_amount"] == "30.00"
    assert [(r["external_id"], r["amount"]) for r in newest["refunds"]] == [("rf-half", "20.00")]
    assert oldest["buyer_ref"] == "会员 0042" and newest["buyer_ref"] is None
    lines = {line["level"]: line for line in oldest["commissions"]}
    assert [lines[k]["amount"] for k in (1, 2, 3)] == ["10.00", "3.00", "1.00"]
    assert lines[1]["own"] and lines[1]["status"] == "pending"
    assert lines[2]["beneficiary"] == {"code": b["code"], "name": "李*"}
    assert lines[3]["beneficiary"] == {"code": a["code"], "name": "张*"}
    assert lines[2]["status"] is None and not lines[2]["own"]  # an upline's status is theirs
    # nothing of the upline beyond code and masked name: no id, no full name, no contact data
    text_of_page = resp.text
    for leaked in (
        "李四",
        "张三丰",
        "13800000001",
        "13800000002",
        '"beneficiary_id"',
        str(b["card"]["number"]),
    ):
        assert leaked not in text_of_page, leaked

    # the same list under /distributors/{id}/orders, for the owner and for staff
    for headers in (auth(c), admin_headers):
        same = await client.get(f"/api/v1/distributors/{c['id']}/orders", headers=headers)
        assert same.status_code == 200 and same.json() == page
    # another distributor (even the sponsor) gets 404, never the data
    for other in (b, a):
        resp = await client.get(f"/api/v1/distributors/{c['id']}/orders", headers=auth(other))
        assert resp.status_code == 404 and "王" not in resp.text
    # b's list has b's own sale only, and b's line on c's orders is not listed there
    assert [
        o["amount"] for o in (await client.get("/api/v1/me/orders", headers=auth(b))).json()["items"]
    ] == ["30.00"]


async def test_filters_and_cursor(client, admin_headers, chain):
    c = chain[-1]
    now = datetime.now(UTC)
    placed = [
        await place(client, c, f"{10 + i}.00", placed_at=(now - timedelta(hours=10 - i)).isoformat())
        for i in range(7)
    ]
    await refund(client, placed[0], "10.00", auth(c))
    await refund(client, placed[1], "1.00", auth(c))
    every = await _all_pages(client, "/api/v1/me/orders", auth(c), limit=2)
    assert [o["id"] for o in every] == [o["id"] for o in reversed(placed)]
    by_status = {
        s: [o["id"] for o in await _all_pages(client, "/api/v1/me/orders", auth(c), status=s, limit=3)]
        for s in ("completed", "partially_refunded", "refunded")
    }
    assert by_status["refunded"] == [placed[0]["id"]]
    assert by_status["partially_refunded"] == [placed[1]["id"]]
    assert by_status["completed"] == [o["id"] for o in reversed(placed[2:])]
    window = await _all_pages(
        client,
        "/api/v1/me/orders",
        auth(c),
        limit=1,
        **{
            "from": (now - timedelta(hours=8, minutes=30)).isoformat(),
            "to": (now - timedelta(hours=5, minutes=30)).isoformat(),
        },
    )
    assert [o["id"] for o in window] == [placed[i]["id"] for i in (4, 3, 2)]


async def test_bad_filters_are_422_naming_the_field(client, chain):
    c = chain[-1]
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"limit": "0"}, "limit"),
    ):
        resp = await client.get("/api/v1/me/orders", headers=auth(c), params=params)
        assert resp.status_code in (400, 422), (params, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert field in resp.text, (params, resp.text)


async def test_buyer_ref_is_stored_encrypted_on_every_ingest_path(
    client, admin_headers, chain, session, sessionmaker, settings
):
    c = chain[-1]
    single = await place(client, c, "10.00", buyer={"ref": "单笔-buyer"})
    assert single["buyer_ref"] == "单笔-buyer"
    batch = await client.post(
        "/api/v1/orders/batch",
        headers=admin_headers,
        json={
            "orders": [order_body(c, "11.00", buyer={"ref": f"batch-buyer-{i}"}) for i in range(3)]
            + [order_body(c, "12.00", buyer={"ip": "10.0.0.9"})]
        },
    )
    assert batch.status_code == 200, batch.text
    assert [i["order"]["buyer_ref"] for i in batch.json()["items"]] == [
        "batch-buyer-0",
        "batch-buyer-1",
        "batch-buyer-2",
        None,
    ]
    header = ["external_id", "card_number", "amount", "buyer_ref"]
    card = c["card"]["number"]
    data = (
        ",".join(header)
        + "\n"
        + f'csv-1,{card},5.00,"tab\tand ""quote"", back\\slash"\n'
        + f"csv-2,{card},6.00,\ncsv-3,{card},7.00,  plain  \n"
    ).encode()
    async with sessionmaker() as s:
        result = await import_csv(s, settings, [data], header=header)
        await s.commit()
    assert result["created"] == 3
    rows = (
        await session.execute(
            text("SELECT external_id, buyer_ref_enc, buyer_ref_hash FROM orders ORDER BY id")
        )
    ).all()
    stored = {r.external_id: r for r in rows}
    expected = {
        single["external_id"]: "单笔-buyer",
        "csv-1": 'tab\tand "quote", back\\slash',
        "csv-2": None,
        "csv-3": "  plain  ",
    }
    for i, item in enumerate(batch.json()["items"][:3]):
        expected[item["order"]["external_id"]] = f"batch-buyer-{i}"
    for external_id, value in expected.items():
        row = stored[external_id]
        assert (decrypt(settings.secret_key, row.buyer_ref_enc) if row.buyer_ref_enc else None) == value
        if value is not None:
            assert value.encode() not in bytes(row.buyer_ref_enc)
            assert row.buyer_ref_hash is not None
    mine = {o["external_id"]: o["buyer_ref"] for o in await _all_pages(client, "/api/v1/me/orders", auth(c))}
    assert mine["csv-1"] == 'tab\tand "quote", back\\slash' and mine["csv-3"] == "  plain  "


async def test_orders_stored_before_show_the_buyer_masked(client, chain, session):
    c = chain[-1]
    old = await place(client, c, "10.00", buyer={"ref": "old-buyer"})
    twin = await place(client, c, "10.00", buyer={"ref": "OLD-BUYER "})
    # as stored before migration 0060: the keyed hash only
    await session.execute(
        text("UPDATE orders SET buyer_ref_enc = NULL WHERE id = ANY(:ids)"), {"ids": [old["id"], twin["id"]]}
    )
    await session.commit()
    shown = {
        o["id"]: o["buyer_ref"]
        for o in (await client.get("/api/v1/me/orders", headers=auth(c))).json()["items"]
    }
    assert shown[old["id"]].startswith("****") and "old" not in shown[old["id"]]
    assert shown[old["id"]] == shown[twin["id"]]  # one buyer still reads as one buyer
    read = (await client.get(f"/api/v1/orders/{old['id']}", headers=auth(c))).json()
    assert read["buyer_ref"] == shown[old["id"]]
