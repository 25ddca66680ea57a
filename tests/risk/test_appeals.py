"""Appeals through the API: every legal transition and the illegal ones, claims and their expiry,
escalation, conflict of interest, resubmission cap, SLA pause, money on approve/reject, closure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from distnet.risk.appeals import TRANSITIONS, AppealAction, AppealStatus, transition
from distnet.risk.errors import AppealTransitionRefused
from tests.factories import auth, close_account, register


@pytest.mark.parametrize("status", list(AppealStatus))
@pytest.mark.parametrize("action", list(AppealAction))
def test_transition_table(status, action):
    allowed = {to for (frm, act, to) in TRANSITIONS if frm == status and act == action}
    for to in AppealStatus:
        if to in allowed:
            assert transition(status, action, to) == to
        else:
            with pytest.raises(AppealTransitionRefused):
                transition(status, action, to)
    # decided appeals are final
    if status in (AppealStatus.approved, AppealStatus.rejected):
        assert not allowed


@pytest.fixture
async def world(client, admin_headers, staff):
    root = await register(client, admin_headers, name="root")
    d = await register(client, sponsor=root, name="seller")
    other = await register(client, sponsor=root, name="other")
    r1 = await staff("risk_reviewer", name="r1")
    r2 = await staff("risk_reviewer", name="r2")
    r3 = await staff("risk_reviewer", name="r3")
    senior = await staff("risk_admin", name="senior")
    return {"root": root, "d": d, "other": other, "r1": r1, "r2": r2, "r3": r3, "senior": senior}


async def _manual_hold(client, w, reason="manual", by="r1"):
    resp = await client.post(
        f"/api/v1/cards/{w['d']['card']['number']}/holds",
        json={"reason": reason, "note": "looks like brushing"},
        headers=w[by],
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def _appeal(client, w, hold_id, statement="I did nothing wrong"):
    return await client.post(
        "/api/v1/appeals",
        json={
            "hold_id": hold_id,
            "statement": statement,
            "evidence": ["receipt-1.jpg", {"url": "https://x/y"}],
        },
        headers=auth(w["d"]),
    )


async def _decide(client, headers, appeal_id, decision, note="n"):
    return await client.post(
        f"/api/v1/appeals/{appeal_id}/decision", json={"decision": decision, "note": note}, headers=headers
    )


async def test_appeal_flow_with_info_request_and_approval(client, world, session, net):
    w = world
    hold = await _manual_hold(client, w)
    d = await _as_d(session, w["d"])
    await net.commission(d, 700, hold_id=hold["id"])
    await session.commit()

    resp = await _appeal(client, w, hold["id"])
    assert resp.status_code == 201, resp.text
    appeal = resp.json()
    assert appeal["status"] == "submitted" and appeal["hold"]["reason"] == "manual"
    assert (await _appeal(client, w, hold["id"])).status_code == 409  # one open appeal per hold
    aid = appeal["id"]

    # illegal before a claim: deciding, replying to a non-request is only a message
    assert (await _decide(client, w["r2"], aid, "approve")).status_code == 409
    # the reviewer who placed the manual hold may not claim or decide it
    resp = await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r1"])
    assert resp.status_code == 403 and resp.json()["code"] == "reviewer-placed-hold"
    assert (await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])).json()[
        "status"
    ] == "in_review"
    resp = await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r3"])
    assert resp.status_code == 409 and resp.json()["code"] == "appeal-claimed"
    assert (await _decide(client, w["r3"], aid, "approve")).status_code == 409  # not the claimer

    due_before = (await client.get(f"/api/v1/appeals/{aid}", headers=w["r2"])).json()["due_at"]
    resp = await _decide(client, w["r2"], aid, "request_info", "send the receipts")
    assert resp.json()["status"] == "info_requested" and resp.json()["paused"] is True
    await session.execute(
        text("UPDATE appeal SET paused_at = paused_at - interval '2 days' WHERE id = :a"), {"a": aid}
    )
    await session.commit()
    assert (await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])).status_code == 409
    resp = await client.post(
        f"/api/v1/appeals/{aid}/messages",
        json={"message": "attached", "attachments": ["r.pdf"]},
        headers=auth(w["d"]),
    )
    assert resp.status_code == 200 and resp.json()["status"] == "submitted"
    due_after = (await client.get(f"/api/v1/appeals/{aid}", headers=w["r2"])).json()["due_at"]
    pushed = datetime.fromisoformat(due_after) - datetime.fromisoformat(due_before)
    assert timedelta(days=2) <= pushed < timedelta(days=2, minutes=5)  # the SLA clock was paused

    # the asking reviewer keeps priority; r3 cannot take it while the claim is fresh
    assert (await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r3"])).status_code == 409
    assert (await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])).status_code == 200
    resp = await _decide(client, w["r2"], aid, "approve", "receipts check out")
    assert resp.status_code == 200 and resp.json()["status"] == "approved"

    hold_view = (await client.get(f"/api/v1/holds/{hold['id']}", headers=auth(w["d"]))).json()
    assert hold_view["status"] == "lifted" and hold_view["outcome"] == "cleared"
    assert (await client.get(f"/api/v1/distributors/{w['d']['id']}/balances", headers=auth(w["d"]))).json()[
        "pending"
    ] == "7.00"
    card = (await client.get(f"/api/v1/cards/{w['d']['card']['number']}", headers=auth(w["d"]))).json()
    assert card["status"] == "active"

    # the owner sees every step (no reviewer identities), others see nothing
    own = (await client.get(f"/api/v1/appeals/{aid}", headers=auth(w["d"]))).json()
    assert [h["action"] for h in own["history"]] == [
        "submitted",
        "claimed",
        "request_info",
        "replied",
        "claimed",
        "approve",
    ]
    assert "actor" not in own["history"][0] and own["hold"]["reason"] == "manual"
    assert (await client.get(f"/api/v1/appeals/{aid}", headers=auth(w["other"]))).status_code == 404
    # decided: no more messages, no more decisions; approved hold cannot be appealed again
    assert (
        await client.post(f"/api/v1/appeals/{aid}/messages", json={"message": "thanks"}, headers=auth(w["d"]))
    ).status_code == 409
    assert (await _decide(client, w["r2"], aid, "reject")).status_code == 409
    assert (await _appeal(client, w, hold["id"])).status_code == 409
    audit = await session.scalar(text("SELECT count(*) FROM audit_log WHERE subject_type = 'appeal'"))
    assert audit == 6
    topics = (
        (await session.execute(text("SELECT topic FROM outbox_event WHERE topic LIKE 'appeal.%'")))
        .scalars()
        .all()
    )
    assert len(topics) == 6


async def _as_d(session, reg):
    from tests.risk.conftest import D

    card_id = await session.scalar(
        text("SELECT id FROM card WHERE number = :n"), {"n": reg["card"]["number"]}
    )
    return D(reg["id"], reg["code"], reg["card"]["number"], card_id, reg["api_key"])


async def test_approval_clears_only_this_hold(client, world, session, net):
    w = world
    manual = await _manual_hold(client, w)
    brushing = await _manual_hold(client, w, reason="order_brushing")
    d = await _as_d(session, w["d"])
    await net.commission(d, 400, hold_id=manual["id"])
    await session.commit()
    aid = (await _appeal(client, w, manual["id"])).json()["id"]
    await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])
    assert (await _decide(client, w["r2"], aid, "approve")).status_code == 200
    card = (await client.get(f"/api/v1/cards/{w['d']['card']['number']}", headers=auth(w["d"]))).json()
    assert card["status"] == "suspended" and [h["id"] for h in card["holds"]] == [brushing["id"]]
    # still under a violation hold: the money moved to the other hold, still withheld
    bal = (await client.get(f"/api/v1/distributors/{w['d']['id']}/balances", headers=auth(w["d"]))).json()
    assert bal["withheld"] == "4.00" and bal["pending"] == "0.00"


async def test_rejections_confirm_and_the_last_one_forfeits(client, world, session, net):
    w = world
    hold = await _manual_hold(client, w)
    d = await _as_d(session, w["d"])
    await net.commission(d, 900, hold_id=hold["id"])
    await session.commit()
    for n in (1, 2, 3):
        resp = await _appeal(client, w, hold["id"], statement=f"try {n}")
        assert resp.status_code == 201 and resp.json()["submission_no"] == n
        aid = resp.json()["id"]
        await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])
        assert (await _decide(client, w["r2"], aid, "reject")).json()["status"] == "rejected"
        view = (await client.get(f"/api/v1/holds/{hold['id']}", headers=w["r2"])).json()
        assert view["outcome"] == "confirmed" and view["status"] == "active"
        if n < 3:
            assert view["withheld"]["amount"] == "9.00" and view["forfeit_at"] is not None
    bal = (await client.get(f"/api/v1/distributors/{w['d']['id']}/balances", headers=auth(w["d"]))).json()
    assert bal["withheld"] == "0.00"  # the final rejection forfeited at once
    resp = await _appeal(client, w, hold["id"])
    assert resp.status_code == 409


async def test_escalation_goes_to_a_risk_admin(client, world):
    w = world
    hold = await _manual_hold(client, w)
    aid = (await _appeal(client, w, hold["id"])).json()["id"]
    await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])
    resp = await _decide(client, w["r2"], aid, "escalate", "needs a senior")
    assert resp.json()["status"] == "escalated" and resp.json()["assignee"] is None
    resp = await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r3"])
    assert resp.status_code == 403 and resp.json()["code"] == "senior-reviewer-required"
    assert (await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["senior"])).json()[
        "status"
    ] == "in_review"
    assert (await _decide(client, w["r2"], aid, "approve")).status_code == 409
    assert (await _decide(client, w["senior"], aid, "approve")).json()["status"] == "approved"


async def test_claims_expire_when_idle(client, world, session, settings):
    from distnet.risk.appeals import release_stale_claims

    w = world
    hold = await _manual_hold(client, w)
    aid = (await _appeal(client, w, hold["id"])).json()["id"]
    await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])
    await session.execute(
        text("UPDATE appeal SET claimed_at = now() - interval '2 hours' WHERE id = :a"), {"a": aid}
    )
    await session.commit()
    resp = await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r3"])
    assert resp.status_code == 200 and "r3" in resp.json()["assignee"]
    await session.execute(
        text("UPDATE appeal SET claimed_at = now() - interval '2 hours' WHERE id = :a"), {"a": aid}
    )
    assert await release_stale_claims(session, settings) == 1
    await session.commit()
    view = (await client.get(f"/api/v1/appeals/{aid}", headers=w["r2"])).json()
    assert view["status"] == "submitted" and view["assignee"] is None
    assert view["history"][-1]["action"] == "claim_expired"


async def test_queue_order_and_filters(client, world, session, admin_headers):
    w = world
    a = (await _appeal(client, w, (await _manual_hold(client, w))["id"])).json()["id"]
    b = (await _appeal(client, w, (await _manual_hold(client, w, reason="order_brushing"))["id"])).json()[
        "id"
    ]
    await session.execute(
        text("UPDATE appeal SET due_at = now() + interval '1 hour' WHERE id = :b"), {"b": b}
    )
    await session.commit()
    items = (await client.get("/api/v1/appeals", headers=w["r2"])).json()["items"]
    assert [i["id"] for i in items] == [b, a]  # oldest due first
    items = (await client.get("/api/v1/appeals?reason=manual", headers=w["r2"])).json()["items"]
    assert [i["id"] for i in items] == [a]
    await client.post(f"/api/v1/appeals/{a}/claim", headers=w["r2"])
    mine = (await client.get("/api/v1/appeals?assignee=me&status=in_review", headers=w["r2"])).json()["items"]
    assert [i["id"] for i in mine] == [a]
    page = (await client.get("/api/v1/appeals?limit=1", headers=w["r2"])).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = (await client.get(f"/api/v1/appeals?limit=1&cursor={page['next_cursor']}", headers=w["r2"])).json()
    assert [i["id"] for i in rest["items"]] == [a]
    assert (await client.get("/api/v1/appeals?status=nope", headers=w["r2"])).status_code == 422
    assert (await client.get("/api/v1/appeals?cursor=@@@", headers=w["r2"])).status_code == 422


async def test_bad_input_and_not_appealable(client, world, admin_headers):
    w = world
    from datetime import datetime, timedelta

    now = datetime.now(UTC)
    resp = await client.post(
        "/api/v1/maintenance-windows",
        headers=w["senior"],
        json={
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "message": "db upgrade",
            "emergency": True,
            "emergency_reason": "database failover",
        },
    )
    assert resp.status_code == 201
    maint = (await client.get(f"/api/v1/cards/{w['d']['card']['number']}", headers=auth(w["d"]))).json()[
        "holds"
    ][0]
    resp = await _appeal(client, w, maint["id"])
    assert resp.status_code == 409 and resp.json()["code"] == "hold-not-appealable"
    for body in (
        {},
        {"hold_id": "x", "statement": "s"},
        {"hold_id": 1, "statement": ""},
        {"hold_id": 1, "statement": "s", "extra": 1},
    ):
        resp = await client.post("/api/v1/appeals", json=body, headers=auth(w["d"]))
        assert resp.status_code == 422, body
    assert (
        await client.post("/api/v1/appeals", json={"hold_id": 999999, "statement": "s"}, headers=auth(w["d"]))
    ).status_code == 404
    hold = await _manual_hold(client, w)
    # someone else's hold: never confirmed to exist
    assert (
        await client.post(
            "/api/v1/appeals", json={"hold_id": hold["id"], "statement": "s"}, headers=auth(w["other"])
        )
    ).status_code == 404
    aid = (await _appeal(client, w, hold["id"])).json()["id"]
    await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])
    assert (await _decide(client, w["r2"], aid, "maybe")).status_code == 422
    assert (await client.post(f"/api/v1/appeals/{aid}/decision", json={}, headers=w["r2"])).status_code == 422
    assert (await client.post("/api/v1/appeals/424242/claim", headers=w["r2"])).status_code == 404


async def test_closure_refused_while_appeal_open_and_hold_active(client, world):
    w = world
    hold = await _manual_hold(client, w)
    aid = (await _appeal(client, w, hold["id"])).json()["id"]
    resp = await client.post(
        f"/api/v1/distributors/{w['d']['id']}/closure",
        headers=auth(w["d"]),
        json={"code": "123456", "reason": "dissatisfied"},
    )
    assert resp.status_code == 409
    codes = {r["code"] for r in resp.json()["reasons"]}
    assert {"open_appeal", "active_violation_hold"} <= codes
    await client.post(f"/api/v1/appeals/{aid}/claim", headers=w["r2"])
    await _decide(client, w["r2"], aid, "approve")
    resp = await close_account(client, w["d"])
    assert resp.status_code == 200, resp.text
