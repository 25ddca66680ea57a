"""Risk API: manual holds, rules config, scans and cases, maintenance windows and announcements,
the review console; bad input is a 4xx problem, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.risk import maintenance
from tests.factories import auth, register


async def _card(client, d):
    return (await client.get(f"/api/v1/cards/{d['card']['number']}", headers=auth(d))).json()


async def test_manual_hold_place_view_lift(client, admin_headers, staff, session):
    root = await register(client, admin_headers, name="root")
    d = await register(client, sponsor=root, name="d")
    other = await register(client, sponsor=root, name="o")
    reviewer = await staff("risk_reviewer")
    number = d["card"]["number"]
    resp = await client.post(
        f"/api/v1/cards/{number}/holds", json={"reason": "manual", "note": "odd refunds"}, headers=reviewer
    )
    assert resp.status_code == 201, resp.text
    hold = resp.json()
    assert hold["status"] == "active" and hold["card_number"] == number and hold["appealable"] is True
    assert (await _card(client, d))["status"] == "suspended"
    own = (await client.get(f"/api/v1/holds/{hold['id']}", headers=auth(d))).json()
    assert own["reason"] == "manual" and "placed_by" not in own["source"] and own["how_to_appeal"]
    assert (await client.get(f"/api/v1/holds/{hold['id']}", headers=auth(other))).status_code == 404
    # bad input
    for body in ({}, {"reason": "maintenance"}, {"reason": "nope"}, {"reason": "manual", "x": 1}):
        assert (
            await client.post(f"/api/v1/cards/{number}/holds", json=body, headers=reviewer)
        ).status_code == 422
    assert (
        await client.post("/api/v1/cards/0000/holds", json={"reason": "manual"}, headers=reviewer)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/holds/{hold['id']}/lift", json={"outcome": "maybe"}, headers=reviewer)
    ).status_code == 422
    assert (
        await client.post("/api/v1/holds/999999/lift", json={"outcome": "cleared"}, headers=reviewer)
    ).status_code == 404
    # distributors cannot lift or place
    assert (
        await client.post(f"/api/v1/holds/{hold['id']}/lift", json={"outcome": "cleared"}, headers=auth(d))
    ).status_code == 403
    resp = await client.post(
        f"/api/v1/holds/{hold['id']}/lift", json={"outcome": "cleared", "note": "fine"}, headers=reviewer
    )
    assert resp.status_code == 200 and resp.json()["status"] == "lifted"
    assert (await _card(client, d))["status"] == "active"
    assert (
        await client.post(f"/api/v1/holds/{hold['id']}/lift", json={"outcome": "cleared"}, headers=reviewer)
    ).status_code == 409
    actions = (
        (await session.execute(text("SELECT action FROM audit_log WHERE subject_type = 'hold' ORDER BY id")))
        .scalars()
        .all()
    )
    assert actions == ["hold.placed", "hold.lifted"]


async def test_rules_config(client, staff, session):
    admin = await staff("risk_admin")
    items = (await client.get("/api/v1/risk/rules", headers=admin)).json()["items"]
    assert {i["name"] for i in items} == {
        "self_referral",
        "identity_cluster",
        "recruit_burst",
        "order_velocity",
        "repeat_buyer",
        "self_purchase",
        "circular_orders",
        "refund_ratio",
        "buyer_concentration",
        "unpaid_balance",
    }
    modes = {i["name"]: i["mode"] for i in items}
    assert modes["unpaid_balance"] == "enforce" and {
        m for n, m in modes.items() if n != "unpaid_balance"
    } == {"review"}
    bc = next(i for i in items if i["name"] == "buyer_concentration")
    assert bc["params"]["window_minutes"] == 60 and bc["params"]["min_ratio"] == 3
    resp = await client.put(
        "/api/v1/risk/rules/order_velocity",
        json={"mode": "enforce", "params": {"max_orders": 80}},
        headers=admin,
    )
    assert (
        resp.status_code == 200 and resp.json()["version"] == 2 and resp.json()["params"]["max_orders"] == 80
    )
    assert resp.json()["params"]["window_minutes"] == 60
    bad = [
        ("/api/v1/risk/rules/nope", {"mode": "enforce"}, 404),
        ("/api/v1/risk/rules/order_velocity", {"mode": "loud"}, 422),
        ("/api/v1/risk/rules/order_velocity", {"params": {"speed": 1}}, 422),
        ("/api/v1/risk/rules/order_velocity", {"params": {"max_orders": -1}}, 422),
        ("/api/v1/risk/rules/order_velocity", {"params": {"max_orders": "50"}}, 422),
        ("/api/v1/risk/rules/refund_ratio", {"params": {"ratio": 1.5}}, 422),
        ("/api/v1/risk/rules/unpaid_balance", {"params": {"min_owed": "12.345"}}, 422),
        ("/api/v1/risk/rules/unpaid_balance", {"params": {"min_owed": 50}}, 422),
        ("/api/v1/risk/rules/order_velocity", {"params": [1]}, 422),
        ("/api/v1/risk/rules/order_velocity", {"extra": 1}, 422),
    ]
    for path, body, status in bad:
        resp = await client.put(path, json=body, headers=admin)
        assert resp.status_code == status, (path, body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    errs = (
        await client.put(
            "/api/v1/risk/rules/order_velocity", json={"params": {"speed": 1, "max_orders": 0}}, headers=admin
        )
    ).json()["errors"]
    assert {e["field"] for e in errs} == {"params.speed", "params.max_orders"}
    ok = await client.put(
        "/api/v1/risk/rules/unpaid_balance", json={"params": {"min_owed": "80.5"}}, headers=admin
    )
    assert ok.json()["params"]["min_owed"] == "80.50"
    versions = (
        await session.execute(
            text("SELECT version, mode FROM risk_rule_version WHERE name = 'order_velocity' ORDER BY version")
        )
    ).all()
    assert [(v.version, v.mode) for v in versions] == [(1, "review"), (2, "enforce")]
    assert (
        await session.scalar(text("SELECT count(*) FROM audit_log WHERE action = 'risk_rule.updated'")) == 2
    )
    reviewer = await staff("risk_reviewer", name="rv")
    assert (
        await client.put("/api/v1/risk/rules/order_velocity", json={"mode": "off"}, headers=reviewer)
    ).status_code == 403


async def test_scan_cases_decision_and_precision(client, admin_headers, staff, net, session):
    admin = await staff("risk_admin")
    reviewer = await staff("risk_reviewer", name="rv")
    d = await net.add()
    for _ in range(5):
        await net.order(d, buyer="same-buyer")
    await session.commit()
    resp = await client.post("/api/v1/risk/scans", headers=admin)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["cases_opened"] >= 1 and body["holds_placed"] == 0 and body["id"]
    cases = (await client.get("/api/v1/risk/cases?rule=repeat_buyer&status=open", headers=reviewer)).json()[
        "items"
    ]
    assert len(cases) == 1
    case = cases[0]
    assert case["subject"]["card_numbers"] == [d.card] and len(case["subject"]["order_ids"]) == 5
    assert case["action"] == "review" and case["evidence"]["orders"] == 5 and case["rule_version"] == 1
    assert (await client.get("/api/v1/risk/cases?status=weird", headers=reviewer)).status_code == 422
    assert (await client.get("/api/v1/risk/cases?rule=weird", headers=reviewer)).status_code == 422
    assert (
        await client.post(
            f"/api/v1/risk/cases/{case['id']}/decision", json={"decision": "x"}, headers=reviewer
        )
    ).status_code == 422
    resp = await client.post(
        f"/api/v1/risk/cases/{case['id']}/decision", json={"decision": "hold"}, headers=reviewer
    )
    assert (
        resp.status_code == 200 and resp.json()["holds_placed"] == 1 and resp.json()["status"] == "actioned"
    )
    assert (
        await client.post(
            f"/api/v1/risk/cases/{case['id']}/decision", json={"decision": "dismiss"}, headers=reviewer
        )
    ).status_code == 409
    hold_id = (await net.active_holds(d))[0].id
    # the appeal outcome labels the rule version: approved = a false positive
    aid = (
        await client.post(
            "/api/v1/appeals", json={"hold_id": hold_id, "statement": "regular customer"}, headers=d.headers
        )
    ).json()["id"]
    await client.post(f"/api/v1/appeals/{aid}/claim", headers=reviewer)
    await client.post(f"/api/v1/appeals/{aid}/decision", json={"decision": "approve"}, headers=reviewer)
    prec = (await client.get("/api/v1/risk/precision", headers=reviewer)).json()["items"]
    assert prec == [
        {
            "rule": "repeat_buyer",
            "version": 1,
            "holds": 1,
            "appeals_rejected": 0,
            "appeals_approved": 1,
            "precision": 0.0,
        }
    ]
    rules = (await client.get("/api/v1/risk/rules", headers=admin)).json()["items"]
    assert next(r for r in rules if r["name"] == "repeat_buyer")["precision"][0]["precision"] == 0.0
    assert (
        await client.post("/api/v1/risk/scans", json={"rules": ["nope"]}, headers=admin)
    ).status_code == 404


def _iso(dt: datetime) -> str:
    return dt.isoformat()


async def test_maintenance_window_scope_announcement_and_restore_without_worker(
    client, admin_headers, staff, session
):
    admin = await staff("risk_admin")
    root = await register(client, admin_headers, name="root", region="sh")
    sh = await register(client, sponsor=root, name="sh", region="sh")
    bj = await register(client, sponsor=root, name="bj", region="bj")
    now = datetime.now(UTC)
    resp = await client.post(
        "/api/v1/maintenance-windows",
        headers=admin,
        json={
            "starts_at": _iso(now - timedelta(minutes=1)),
            "ends_at": _iso(now + timedelta(hours=1)),
            "scope": {"regions": ["sh"]},
            "message": "系统维护: database upgrade",
            "emergency": True,
            "emergency_reason": "storage failure",
        },
    )
    assert resp.status_code == 201, resp.text
    window = resp.json()
    assert window["holds_placed"] == 2 and window["status"] == "current"
    assert (await _card(client, sh))["status"] == "suspended"
    assert (await _card(client, bj))["status"] == "active"
    maint_hold = (await _card(client, sh))["holds"][0]
    assert maint_hold["reason"] == "maintenance" and maint_hold["appealable"] is False
    public = (await client.get("/api/v1/announcements")).json()["items"]
    assert [(a["id"], a["status"]) for a in public] == [(window["id"], "current")]
    # a manual hold on top: the window never touches it
    reviewer = await staff("risk_reviewer", name="rv")
    manual = (
        await client.post(
            f"/api/v1/cards/{sh['card']['number']}/holds", json={"reason": "manual"}, headers=reviewer
        )
    ).json()
    # a late joiner in scope is added by the start job
    late = await register(client, sponsor=root, name="late", region="sh")
    assert (await _card(client, late))["status"] == "active"
    assert await maintenance.start_due_windows(session) == 1
    await session.commit()
    assert (await _card(client, late))["status"] == "suspended"
    # time passes (simulated by moving the window and its holds into the past), no job runs
    await session.execute(
        text(
            "UPDATE maintenance_window SET starts_at = now() - interval '2 hours', "
            "ends_at = now() - interval '1 second' WHERE id = :w"
        ),
        {"w": window["id"]},
    )
    await session.execute(
        text(
            "UPDATE hold SET started_at = now() - interval '2 hours', "
            "ends_at = now() - interval '1 second' WHERE maintenance_window_id = :w"
        ),
        {"w": window["id"]},
    )
    await session.commit()
    assert (await _card(client, late))["status"] == "active"  # restored by time alone
    card = await _card(client, sh)
    assert card["status"] == "suspended" and [h["id"] for h in card["holds"]] == [manual["id"]]
    assert (await client.get("/api/v1/announcements")).json()["items"] == []
    # the end job stamps the window's own holds once and announces the end once
    assert await maintenance.end_due_windows(session) == [window["id"]]
    assert await maintenance.end_due_windows(session) == []
    await session.commit()
    rows = (
        await session.execute(
            text("SELECT reason, outcome, lifted_at IS NOT NULL AS lifted FROM hold ORDER BY id")
        )
    ).all()
    assert sorted((r.reason, r.outcome, r.lifted) for r in rows) == [("maintenance", "cleared", True)] * 3 + [
        ("manual", None, False)
    ]
    topics = (
        (
            await session.execute(
                text("SELECT topic FROM outbox_event WHERE topic LIKE 'maintenance.%' ORDER BY seq")
            )
        )
        .scalars()
        .all()
    )
    assert topics == ["maintenance.announced", "maintenance.started", "maintenance.ended"]


async def test_maintenance_bad_input_and_cancel(client, admin_headers, staff):
    admin = await staff("risk_admin")
    root = await register(client, admin_headers, name="root", region="gz")
    now = datetime.now(UTC)
    good = {
        "starts_at": _iso(now + timedelta(hours=25)),
        "ends_at": _iso(now + timedelta(hours=26)),
        "message": "m",
    }
    bad = [
        {**good, "ends_at": _iso(now + timedelta(hours=24, minutes=30))},
        {**good, "starts_at": _iso(now - timedelta(hours=3)), "ends_at": _iso(now - timedelta(hours=2))},
        {**good, "scope": {"ranks": ["diamond"]}},
        {**good, "scope": {"planets": ["mars"]}},
        {**good, "scope": {"regions": []}},
        {**good, "message": ""},
        {**good, "starts_at": "tomorrow"},
        {k: v for k, v in good.items() if k != "message"},
        {**good, "starts_at": "2026-01-01T00:00:00"},
    ]
    for body in bad:
        resp = await client.post("/api/v1/maintenance-windows", json=body, headers=admin)
        assert resp.status_code == 422, (body, resp.text)
    resp = await client.post(
        "/api/v1/maintenance-windows", json={**good, "scope": {"ranks": ["member"]}}, headers=admin
    )
    assert resp.status_code == 201
    wid = resp.json()["id"]
    assert (await _card(client, root))["status"] == "active"  # upcoming: not suspended yet
    assert (await client.get("/api/v1/announcements")).json()["items"][0]["status"] == "upcoming"
    resp = await client.post(f"/api/v1/maintenance-windows/{wid}/cancel", headers=admin)
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert (await client.post(f"/api/v1/maintenance-windows/{wid}/cancel", headers=admin)).status_code == 409
    assert (await client.post("/api/v1/maintenance-windows/999/cancel", headers=admin)).status_code == 404
    assert (await client.get("/api/v1/announcements")).json()["items"] == []
    listed = (await client.get("/api/v1/maintenance-windows", headers=admin)).json()["items"]
    assert listed[0]["id"] == wid and listed[0]["cancelled_at"] is not None
