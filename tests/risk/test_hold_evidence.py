"""What a hold rests on, as its owner sees it: their own orders the rule counted (time, amount,
external id, buyer reference as supplied), the rule and its parameters in words, never another
distributor's data; appealable false with the reason once the appeal cap is reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.risk.evidence import orders_behind
from tests.factories import auth, register
from tests.orders.helpers import place


async def _brushing_hold(client, admin_headers, make_key):
    root = await register(client, admin_headers, name="Root")
    owner = await register(client, sponsor=root, name="周小明", phone="+8613900000011")
    other = await register(client, sponsor=root, name="吴其他", phone="+8613900000022")
    start = datetime.now(UTC) - timedelta(hours=3)
    mine = []
    for i, buyer in enumerate(["客户A", "客户A", "客户A", "客户B", "客户B", "客户B"]):
        mine.append(
            await place(
                client,
                owner,
                "20.00",
                placed_at=(start + timedelta(minutes=5 * i)).isoformat(),
                buyer={"ref": buyer},
            )
        )
    theirs = await place(client, other, "99.00", buyer={"ref": "other-secret-buyer"})
    risk_admin = {"Authorization": f"Bearer {await make_key('risk_admin', 'risk_reviewer')}"}
    resp = await client.put(
        "/api/v1/risk/rules/buyer_concentration",
        headers=risk_admin,
        json={"mode": "enforce", "params": {"min_ratio": 3.0, "window_minutes": 60}},
    )
    assert resp.status_code == 200, resp.text
    resp = await client.post(
        "/api/v1/risk/scans", headers=risk_admin, json={"rules": ["buyer_concentration"]}
    )
    assert resp.status_code == 201, resp.text
    card = (await client.get(f"/api/v1/cards/{owner['card']['number']}", headers=auth(owner))).json()
    assert card["status"] == "suspended", card
    return owner, other, mine, theirs, card["holds"][0]["id"], risk_admin


async def test_owner_sees_the_orders_and_the_rule_in_words(client, admin_headers, make_key, session):
    owner, other, mine, theirs, hold_id, risk_admin = await _brushing_hold(client, admin_headers, make_key)
    # the evidence also names another distributor's order (a ring rule would): never shown to the owner
    await session.execute(
        text(
            "UPDATE hold SET evidence = jsonb_set(evidence, '{order_ids}', (evidence->'order_ids') || to_jsonb(:o))"
            " WHERE id = :h"
        ),
        {"o": theirs["id"], "h": hold_id},
    )
    await session.commit()
    resp = await client.get(f"/api/v1/holds/{hold_id}", headers=auth(owner))
    assert resp.status_code == 200, resp.text
    hold = resp.json()
    assert hold["explanation"].startswith(
        "6 orders from 2 buyers within 60 minutes; the limit is a ratio of 3"
    )
    listed = hold["orders"]["items"]
    assert hold["orders"]["total"] == 6 and hold["orders"]["buyers"] == 2
    assert sorted(o["id"] for o in listed) == sorted(o["id"] for o in mine)
    by_id = {o["id"]: o for o in listed}
    for placed in mine:
        shown = by_id[placed["id"]]
        assert shown["external_id"] == placed["external_id"] and shown["amount"] == "20.00"
        assert shown["placed_at"] == placed["placed_at"]
        assert shown["buyer_ref"] == placed["buyer_ref"]
    assert {o["buyer_ref"] for o in listed} == {"客户A", "客户B"}
    for leaked in (
        "other-secret-buyer",
        theirs["external_id"],
        "99.00",
        "吴其他",
        "13900000022",
        other["code"],
    ):
        assert leaked not in resp.text, leaked
    assert hold["appealable"] is True and hold["appeal_unavailable_reason"] is None
    assert hold["appeals"] == {"submitted": 0, "max": 3}
    # staff see the same orders of this hold (the hold is about this owner)
    staff_view = (await client.get(f"/api/v1/holds/{hold_id}", headers=risk_admin)).json()
    assert sorted(o["id"] for o in staff_view["orders"]["items"]) == sorted(o["id"] for o in mine)
    # another distributor cannot see the hold at all
    assert (await client.get(f"/api/v1/holds/{hold_id}", headers=auth(other))).status_code == 404


async def test_orders_behind_for_the_case_page_lists_every_seller(
    client, admin_headers, make_key, session, settings
):
    owner, other, mine, theirs, hold_id, _ = await _brushing_hold(client, admin_headers, make_key)
    ids = [o["id"] for o in mine] + [theirs["id"]]
    everyone = await orders_behind(session, settings.secret_key, ids, seller_id=None)
    assert everyone.total == 7 and {o.seller_code for o in everyone.orders} == {owner["code"], other["code"]}
    only_owner = await orders_behind(session, settings.secret_key, ids, seller_id=owner["id"])
    assert only_owner.total == 6 and {o.seller_code for o in only_owner.orders} == {owner["code"]}
    capped = await orders_behind(session, settings.secret_key, ids, seller_id=None, limit=2)
    assert len(capped.orders) == 2 and capped.total == 7
    assert [o.id for o in capped.orders] == [theirs["id"], mine[-1]["id"]]  # newest first


async def test_not_appealable_with_the_reason_once_the_cap_is_reached(
    client, admin_headers, make_key, session
):
    owner, _, _, _, hold_id, risk_admin = await _brushing_hold(client, admin_headers, make_key)
    for n in range(3):
        resp = await client.post(
            "/api/v1/appeals",
            headers=auth(owner),
            json={"hold_id": hold_id, "statement": f"these were real customers ({n})"},
        )
        assert resp.status_code == 201, resp.text
        appeal_id = resp.json()["id"]
        view = (await client.get(f"/api/v1/holds/{hold_id}", headers=auth(owner))).json()
        assert (
            view["appealable"] is False
            and view["appeal_unavailable_reason"] == "an appeal of this hold is open"
        )
        assert (
            await client.post(f"/api/v1/appeals/{appeal_id}/claim", headers=risk_admin)
        ).status_code == 200
        resp = await client.post(
            f"/api/v1/appeals/{appeal_id}/decision",
            headers=risk_admin,
            json={"decision": "reject", "note": "ratio too high"},
        )
        assert resp.status_code == 200, resp.text
        view = (await client.get(f"/api/v1/holds/{hold_id}", headers=auth(owner))).json()
        if n < 2:
            assert view["appealable"] is True, view
    assert view["appealable"] is False
    assert (
        "exhausted" in view["appeal_unavailable_reason"]
        or "most allowed" in view["appeal_unavailable_reason"]
    )
    assert view["how_to_appeal"] is None and view["appeals"]["submitted"] == 3
    resp = await client.post(
        "/api/v1/appeals", headers=auth(owner), json={"hold_id": hold_id, "statement": "again"}
    )
    assert resp.status_code in (409, 422), resp.text  # the API refuses what the view said was not possible
