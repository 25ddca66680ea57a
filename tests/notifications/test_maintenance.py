"""The maintenance notice rule, and the in-scope distributors told at announcement and start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.db import session_scope
from distnet.risk import maintenance
from tests.conftest import bearer
from tests.factories import auth, register
from tests.notifications.conftest import deliver_all, give_contact, run_consumers


def _iso(t: datetime) -> str:
    return t.isoformat()


async def test_a_window_needs_24_hours_notice_unless_emergency_with_a_reason(
    client, admin_headers, make_key, sessionmaker
):
    risk_admin = bearer(await make_key("risk_admin", name="ra"))
    now = datetime.now(UTC)
    soon = {
        "starts_at": _iso(now + timedelta(hours=2)),
        "ends_at": _iso(now + timedelta(hours=3)),
        "message": "m",
    }
    resp = await client.post("/api/v1/maintenance-windows", headers=risk_admin, json=soon)
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "starts_at"
    assert "24 hours' notice" in resp.json()["detail"]
    resp = await client.post(
        "/api/v1/maintenance-windows", headers=risk_admin, json={**soon, "emergency": True}
    )
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "emergency_reason"
    resp = await client.post(
        "/api/v1/maintenance-windows",
        headers=risk_admin,
        json={**soon, "emergency": True, "emergency_reason": "disk failing"},
    )
    assert resp.status_code == 201 and resp.json()["emergency"] is True
    ahead = {
        "starts_at": _iso(now + timedelta(hours=24, minutes=5)),
        "ends_at": _iso(now + timedelta(hours=25)),
        "message": "m",
    }
    resp = await client.post("/api/v1/maintenance-windows", headers=risk_admin, json=ahead)
    assert resp.status_code == 201 and resp.json()["emergency"] is False
    async with session_scope(sessionmaker) as s:
        audited = (
            await s.execute(
                text(
                    "SELECT after->>'emergency_reason', after->>'emergency' FROM audit_log "
                    "WHERE action = 'maintenance_window.created' ORDER BY id"
                )
            )
        ).all()
    assert [tuple(r) for r in audited] == [("disk failing", "true"), (None, "false")]


def test_the_notice_rule_follows_the_setting():
    now = datetime.now(UTC)
    maintenance.check_notice(
        now + timedelta(hours=3), now=now, min_notice_hours=2, emergency=False, emergency_reason=None
    )
    for hours in (0, 1.9):
        try:
            maintenance.check_notice(
                now + timedelta(hours=hours),
                now=now,
                min_notice_hours=2,
                emergency=False,
                emergency_reason=None,
            )
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "status", None) == 422
        else:
            raise AssertionError(f"{hours} h of notice was accepted")


async def test_in_scope_distributors_are_told_at_announcement_and_start(
    client, admin_headers, make_key, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    risk_admin = bearer(await make_key("risk_admin", name="ra"))
    root = await register(client, admin_headers, name="root", region="bj")
    sh = await register(client, sponsor=root, name="sh", region="sh")
    sh2 = await register(client, sponsor=root, name="sh2", region="sh")
    bj = await register(client, sponsor=root, name="bj", region="bj")
    for d, email in ((sh, "sh@example.com"), (bj, "bj@example.com")):
        await give_contact(sessionmaker, notify_settings, d["id"], email=email)
    now = datetime.now(UTC)
    resp = await client.post(
        "/api/v1/maintenance-windows",
        headers=risk_admin,
        json={
            "starts_at": _iso(now + timedelta(hours=30)),
            "ends_at": _iso(now + timedelta(hours=31)),
            "scope": {"regions": ["sh"]},
            "message": "数据库升级",
        },
    )
    assert resp.status_code == 201, resp.text
    window_id = resp.json()["id"]
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.messages
    assert mail["To"] == "sh@example.com" and "数据库升级" in mail.get_content()
    for d, expected in ((sh, ["maintenance_announced"]), (sh2, ["maintenance_announced"]), (bj, [])):
        inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()
        assert [i["kind"] for i in inbox["items"]] == expected
    # the window starts (time moved forward for it and its holds); the start job announces it once
    async with session_scope(sessionmaker) as s:
        await s.execute(
            text("UPDATE maintenance_window SET starts_at = now() - interval '1 minute' WHERE id = :w"),
            {"w": window_id},
        )
        await s.execute(
            text("UPDATE hold SET started_at = now() - interval '1 minute' WHERE maintenance_window_id = :w"),
            {"w": window_id},
        )
    async with session_scope(sessionmaker) as s:
        await maintenance.start_due_windows(s)
    async with session_scope(sessionmaker) as s:
        await maintenance.start_due_windows(s)
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    assert [m["To"] for m in mailbox.messages] == ["sh@example.com", "sh@example.com"]
    assert "已开始" in mailbox.messages[1]["Subject"]
    for d, expected in ((sh2, ["maintenance_started", "maintenance_announced"]), (bj, [])):
        inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()
        assert [i["kind"] for i in inbox["items"]] == expected
