"""Console pages over HTTP (the browser tests cover the same flows in Chromium): escaping,
role rules page by page and button by button, readable refusals."""

from __future__ import annotations

from tests.console.support import csrf_of, make_staff_async, sign_in_client
from tests.factories import auth, register


async def test_appeal_text_is_escaped(client, admin_headers, sessionmaker, make_key):
    root = await register(client, admin_headers, name="root")
    d = await register(client, sponsor=root, name="d")
    placer = {"Authorization": f"Bearer {await make_key('risk_reviewer', name='placer')}"}
    hold = (
        await client.post(
            f"/api/v1/cards/{d['card']['number']}/holds", json={"reason": "manual"}, headers=placer
        )
    ).json()
    aid = (
        await client.post(
            "/api/v1/appeals",
            json={"hold_id": hold["id"], "statement": "<script>x()</script>"},
            headers=auth(d),
        )
    ).json()["id"]
    await sign_in_client(client, await make_staff_async(sessionmaker, "Reviewer", "risk_reviewer"))
    queue = await client.get("/console/appeals")
    assert queue.status_code == 200 and f"/console/appeals/{aid}" in queue.text
    assert "<script>x()" not in queue.text and "&lt;script&gt;" in queue.text
    detail = await client.get(f"/console/appeals/{aid}")
    assert detail.status_code == 200 and "&lt;script&gt;" in detail.text and "submitted" in detail.text
    missing = await client.get("/console/appeals/99999")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


async def test_role_rules_page_by_page(client, sessionmaker):
    await sign_in_client(client, await make_staff_async(sessionmaker, "Finance Only", "finance"))
    for path in ("/console/appeals", "/console/holds", "/console/cards/1"):
        r = await client.get(path)
        assert r.status_code == 403 and "text/html" in r.headers["content-type"], path
    home = await client.get("/console/account")
    assert "Appeals" not in home.text  # a finance user never sees the reviewers' pages in the menu
    r = await client.post("/console/appeals/1/claim", data={"_csrf": csrf_of(home.text)})
    assert r.status_code == 403


async def test_every_console_route_without_a_session_goes_to_login(app, client):
    import re

    from litestar.routes import HTTPRoute

    checked = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/console"):
            continue
        for handler in route.route_handlers:
            stage = handler.opt.get("stage", "active")
            if stage in ("public", "anonymous"):
                continue
            assert handler.opt.get("console"), route.path
            path = re.sub(r"\{[^}:]+:int\}", "1", route.path)
            path = re.sub(r"\{[^}:]+:(str|path)\}", "x", path)
            for method in handler.http_methods - {"HEAD", "OPTIONS"}:
                r = await client.request(method, path, follow_redirects=False)
                assert r.status_code == 303 and r.headers["location"] == "/console/login", (method, path)
                checked += 1
    assert checked >= 10
