"""Card lifecycle: issued at registration, loss report freezes at once, replacement moves
everything to a new card, status derived from holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.factories import auth, register


async def _hold(session, distributor_id, reason="manual", subject="t", **cols):
    values = {"d": distributor_id, "r": reason, "s": subject, **cols}
    extra_cols = "".join(f", {k}" for k in cols)
    extra_vals = "".join(f", :{k}" for k in cols)
    hold_id = await session.scalar(
        text(f"""
        INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key{extra_cols})
        SELECT :d, id, :r, 'actor', :s{extra_vals} FROM card WHERE distributor_id = :d AND cancelled_at IS NULL
        RETURNING id"""),
        values,
    )
    await session.commit()
    return hold_id


async def test_card_status_follows_holds(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    number = root["card"]["number"]
    card = (await client.get(f"/api/v1/cards/{number}", headers=auth(root))).json()
    assert card["status"] == "active" and card["holds"] == []

    first = await _hold(session, root["id"], "manual", "a")
    second = await _hold(session, root["id"], "order_brushing", "b")
    card = (await client.get(f"/api/v1/cards/{number}", headers=auth(root))).json()
    assert card["status"] == "suspended"
    assert {h["reason"] for h in card["holds"]} == {"manual", "order_brushing"}
    assert all(h["since"] for h in card["holds"])

    # lifting one hold never lifts the other
    await session.execute(
        text("UPDATE hold SET lifted_at = now(), outcome='cleared' WHERE id=:i"), {"i": first}
    )
    await session.commit()
    card = (await client.get(f"/api/v1/cards/{number}", headers=auth(root))).json()
    assert card["status"] == "suspended" and [h["id"] for h in card["holds"]] == [second]
    await session.execute(
        text("UPDATE hold SET lifted_at = now(), outcome='cleared' WHERE id=:i"), {"i": second}
    )
    await session.commit()
    assert (await client.get(f"/api/v1/cards/{number}", headers=auth(root))).json()["status"] == "active"


async def test_maintenance_hold_active_only_inside_its_window(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    now = datetime.now(UTC)
    await _hold(
        session,
        root["id"],
        "maintenance",
        "window:past",
        started_at=now - timedelta(hours=2),
        ends_at=now - timedelta(hours=1),
    )
    await _hold(
        session,
        root["id"],
        "maintenance",
        "window:future",
        started_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=2),
    )
    card = (await client.get(f"/api/v1/cards/{root['card']['number']}", headers=auth(root))).json()
    assert card["status"] == "active"  # restored by time alone: no worker had to run
    await _hold(
        session,
        root["id"],
        "maintenance",
        "window:now",
        started_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
    )
    card = (await client.get(f"/api/v1/cards/{root['card']['number']}", headers=auth(root))).json()
    assert card["status"] == "suspended" and card["holds"][0]["reason"] == "maintenance"


async def test_loss_report_freezes_and_replacement_moves_everything(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="D")
    old = d["card"]["number"]
    held = await _hold(session, d["id"], "manual", "x")
    resp = await client.post(f"/api/v1/cards/{old}/loss-report", headers=auth(d))
    assert resp.status_code == 200 and resp.json()["status"] == "frozen"
    again = await client.post(f"/api/v1/cards/{old}/loss-report", headers=auth(d))
    assert again.status_code == 200 and again.json()["status"] == "frozen"  # idempotent

    resp = await client.post(f"/api/v1/cards/{old}/replacement", headers=auth(d))
    assert resp.status_code == 201, resp.text
    new = resp.json()
    assert new["number"] != old and new["replaces"] == old
    assert new["status"] == "suspended" and [h["id"] for h in new["holds"]] == [held]  # the hold followed
    assert (await client.get(f"/api/v1/cards/{old}", headers=auth(d))).json()["status"] == "cancelled"
    me = (await client.get("/api/v1/me", headers=auth(d))).json()
    assert me["card"]["number"] == new["number"]
    # a cancelled card cannot be replaced or reported again
    assert (await client.post(f"/api/v1/cards/{old}/replacement", headers=auth(d))).status_code == 409
    assert (await client.post(f"/api/v1/cards/{old}/loss-report", headers=auth(d))).status_code == 409
    actions = set(await session.scalars(text("SELECT action FROM audit_log WHERE subject_type='card'")))
    assert {"card.loss_reported", "card.replaced"} <= actions


async def test_cards_of_others_are_invisible(client, admin_headers, make_key):
    root = await register(client, admin_headers, name="Root")
    a = await register(client, sponsor=root, name="A")
    b = await register(client, sponsor=root, name="B")
    for method, suffix in (("get", ""), ("post", "/loss-report"), ("post", "/replacement")):
        resp = await getattr(client, method)(f"/api/v1/cards/{b['card']['number']}{suffix}", headers=auth(a))
        assert resp.status_code == 404, (method, suffix)
    finance = {"Authorization": f"Bearer {await make_key('finance')}"}
    assert (await client.get(f"/api/v1/cards/{b['card']['number']}", headers=finance)).status_code == 200
    # staff without admin may look but not report a loss
    assert (
        await client.post(f"/api/v1/cards/{b['card']['number']}/loss-report", headers=finance)
    ).status_code == 403
    assert (await client.get("/api/v1/cards/0000", headers=admin_headers)).status_code == 404
