"""Role rules on every endpoint (invariant 10).

A sweep over every route of the application (so new endpoints are covered the day they land):
no key → 401, a bad key → 401, a key whose roles are all outside the route's roles → 403. Then a
table of the ownership rules (self / staff / admin) for the network and card endpoints."""

from __future__ import annotations

import re

import pytest
from litestar.routes import HTTPRoute

from distnet.kit.auth import Role
from tests.factories import RESIDENT_ID, auth, register

ALL_ROLES = [r.value for r in Role]


def _routes(app):
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.opt.get("public") or route.path.startswith("/schema"):
                continue
            if handler.opt.get("console"):
                continue  # the console's session guard: tests/console/test_pages.py
            path = re.sub(r"\{[^}:]+:int\}", "1", route.path)
            path = re.sub(r"\{[^}:]+:(str|path|uuid)\}", "x", path)
            for method in handler.http_methods:
                if method in ("HEAD", "OPTIONS"):
                    continue
                yield method, path, frozenset(handler.opt.get("roles", ()))


async def test_every_protected_route_needs_a_valid_key(app, client):
    checked = 0
    for method, path, _roles in _routes(app):
        resp = await client.request(method, path)
        assert resp.status_code == 401, (method, path, resp.status_code)
        assert resp.headers["content-type"].startswith("application/problem+json")
        resp = await client.request(method, path, headers={"Authorization": "Bearer dn_nope_nope"})
        assert resp.status_code == 401, (method, path)
        resp = await client.request(method, path, headers={"Authorization": "Basic abc"})
        assert resp.status_code == 401, (method, path)
        checked += 1
    assert checked >= 10


async def test_every_route_refuses_roles_outside_its_list(app, client, make_key):
    keys = {role: {"Authorization": f"Bearer {await make_key(role, name=role)}"} for role in ALL_ROLES}
    checked = 0
    for method, path, roles in _routes(app):
        assert roles, f"{method} {path} declares no roles and is not public"
        for role in ALL_ROLES:
            if role == Role.admin or role in roles:
                continue
            resp = await client.request(method, path, headers=keys[role])
            assert resp.status_code == 403, (method, path, role, resp.status_code, resp.text)
            checked += 1
        # admin passes every guard: whatever it gets, it is not an auth refusal
        resp = await client.request(method, path, headers=keys[Role.admin], json={})
        assert resp.status_code not in (401, 403), (method, path, resp.text)
    assert checked > 0


OWNER, OTHER, STAFF_ROLE, ADMIN = "owner", "other distributor", "staff", "admin"

# (method, path template, who, expected status); {id} = owner id, {card} = owner's card
OWNERSHIP_TABLE = [
    ("GET", "/api/v1/distributors/{id}", OWNER, 200),
    ("GET", "/api/v1/distributors/{id}", OTHER, 404),
    ("GET", "/api/v1/distributors/{id}", STAFF_ROLE, 200),
    ("GET", "/api/v1/distributors/{id}/upline", OWNER, 200),
    ("GET", "/api/v1/distributors/{id}/upline", OTHER, 404),
    ("GET", "/api/v1/distributors/{id}/upline", STAFF_ROLE, 200),
    ("GET", "/api/v1/distributors/{id}/downline", OWNER, 200),
    ("GET", "/api/v1/distributors/{id}/downline", OTHER, 404),
    ("GET", "/api/v1/distributors/{id}/downline", STAFF_ROLE, 200),
    ("GET", "/api/v1/distributors/{id}/team-stats", OWNER, 200),
    ("GET", "/api/v1/distributors/{id}/team-stats", OTHER, 404),
    ("GET", "/api/v1/distributors/{id}/team-stats", STAFF_ROLE, 200),
    ("PUT", "/api/v1/distributors/{id}/sponsor", OWNER, 403),
    ("PUT", "/api/v1/distributors/{id}/sponsor", STAFF_ROLE, 403),
    ("PUT", "/api/v1/distributors/{id}/sponsor", ADMIN, 200),
    ("POST", "/api/v1/distributors/{id}/closure", OTHER, 404),
    ("POST", "/api/v1/distributors/{id}/closure", STAFF_ROLE, 403),
    ("GET", "/api/v1/cards/{card}", OWNER, 200),
    ("GET", "/api/v1/cards/{card}", OTHER, 404),
    ("GET", "/api/v1/cards/{card}", STAFF_ROLE, 200),
    ("POST", "/api/v1/cards/{card}/loss-report", OTHER, 404),
    ("POST", "/api/v1/cards/{card}/loss-report", STAFF_ROLE, 403),
    ("POST", "/api/v1/cards/{card}/loss-report", ADMIN, 200),
    ("GET", "/api/v1/distributors/{id}/payout-account", OTHER, 404),
    (
        "GET",
        "/api/v1/distributors/{id}/payout-account",
        OWNER,
        404,
    ),  # none set yet: not found, to the owner too
    ("PUT", "/api/v1/distributors/{id}/payout-account", OTHER, 404),
    ("PUT", "/api/v1/distributors/{id}/payout-account", STAFF_ROLE, 403),
    ("GET", "/api/v1/me", OWNER, 200),
    ("GET", "/api/v1/me", STAFF_ROLE, 403),
    ("GET", "/api/v1/me/orders", OWNER, 200),
    ("GET", "/api/v1/me/orders", STAFF_ROLE, 403),
    ("GET", "/api/v1/distributors/{id}/orders", OWNER, 200),
    ("GET", "/api/v1/distributors/{id}/orders", OTHER, 404),
    ("GET", "/api/v1/distributors/{id}/orders", STAFF_ROLE, 200),
    ("GET", "/api/v1/distributors/{id}/downline.svg", OWNER, 200),
    ("GET", "/api/v1/distributors/{id}/downline.svg", OTHER, 404),
    ("GET", "/api/v1/distributors/{id}/downline.svg", STAFF_ROLE, 200),
    ("GET", "/api/v1/me/export", OWNER, 200),
    ("GET", "/api/v1/me/export", STAFF_ROLE, 403),
    ("POST", "/api/v1/me/keys/rotate", STAFF_ROLE, 403),
    ("GET", "/api/v1/me/notifications", OWNER, 200),
    ("GET", "/api/v1/me/notifications", STAFF_ROLE, 403),
    ("GET", "/api/v1/me/notifications", ADMIN, 404),
    ("POST", "/api/v1/me/notifications/{note}/read", OWNER, 200),
    ("POST", "/api/v1/me/notifications/{note}/read", OTHER, 404),
    ("POST", "/api/v1/me/notifications/{note}/read", STAFF_ROLE, 403),
    ("GET", "/api/v1/me/notification-preferences", OWNER, 200),
    ("GET", "/api/v1/me/notification-preferences", STAFF_ROLE, 403),
    ("PUT", "/api/v1/me/notification-preferences", OTHER, 200),
    ("GET", "/api/v1/me/closure", OWNER, 200),
    ("GET", "/api/v1/me/closure", STAFF_ROLE, 403),
    ("GET", "/api/v1/me/closure", ADMIN, 404),
    ("POST", "/api/v1/me/closure/code", OWNER, 201),
    ("POST", "/api/v1/me/closure/code", STAFF_ROLE, 403),
    ("POST", "/api/v1/distributors/{id}/closure", ADMIN, 200),
    ("GET", "/api/v1/me/profile", OWNER, 200),
    ("GET", "/api/v1/me/profile", STAFF_ROLE, 403),
    ("GET", "/api/v1/me/profile", ADMIN, 404),
    ("GET", "/api/v1/me/consents", OWNER, 200),
    ("GET", "/api/v1/me/consents", STAFF_ROLE, 403),
    ("POST", "/api/v1/me/consents/marketing/withdraw", OWNER, 200),
    ("POST", "/api/v1/me/contact", STAFF_ROLE, 403),
    ("GET", "/api/v1/holds/{hold}", OWNER, 200),  # the owner's hold and its evidence
    ("GET", "/api/v1/holds/{hold}", OTHER, 404),
    ("GET", "/api/v1/holds/{hold}", STAFF_ROLE, 200),
    ("POST", "/api/v1/distributors/{id}/payout-account/code", OWNER, 409),  # no verified contact yet
    ("POST", "/api/v1/distributors/{id}/payout-account/code", OTHER, 404),
    ("POST", "/api/v1/distributors/{id}/payout-account/code", STAFF_ROLE, 403),
]


async def _owner_notice(client, admin_headers, owner) -> int:
    """A notice in the owner's inbox: a manual hold placed on the owner's card, its event consumed."""
    from tests.notifications.conftest import run_consumers

    resp = await client.post(
        f"/api/v1/cards/{owner['card']['number']}/holds",
        headers=admin_headers,
        json={"reason": "manual", "note": "check"},
    )
    assert resp.status_code == 201, resp.text
    await run_consumers(client.app.state.sessionmaker)
    return (await client.get("/api/v1/me/notifications", headers=auth(owner))).json()["items"][0]["id"]


@pytest.mark.parametrize(("method", "template", "who", "expected"), OWNERSHIP_TABLE)
async def test_ownership_rules(client, admin_headers, make_key, method, template, who, expected):
    root = await register(client, admin_headers, name="Root")
    owner = await register(client, sponsor=root, name="Owner")
    other = await register(client, sponsor=root, name="Other")
    headers = {
        OWNER: auth(owner),
        OTHER: auth(other),
        STAFF_ROLE: {"Authorization": f"Bearer {await make_key('risk_reviewer', 'finance')}"},
        ADMIN: admin_headers,
    }[who]
    note = await _owner_notice(client, admin_headers, owner) if "{note}" in template else None
    hold = None
    if "{hold}" in template:
        hold = (
            await client.post(
                f"/api/v1/cards/{owner['card']['number']}/holds",
                headers=admin_headers,
                json={"reason": "manual", "note": "check"},
            )
        ).json()["id"]
    path = template.format(id=owner["id"], card=owner["card"]["number"], note=note, hold=hold)
    body = {"sponsor_id": other["id"]} if path.endswith("/sponsor") else ({} if method == "PUT" else None)
    if path.endswith(f"/{owner['id']}/closure"):
        body = {"reason": "other", "reason_text": "role test"}
    if path.endswith("/payout-account") and method == "PUT":
        body = {
            "method": "alipay",
            "holder_name": "x",
            "account_number": "13800138000",
            "resident_id": RESIDENT_ID,
        }
    resp = await client.request(method, path, headers=headers, json=body)
    assert resp.status_code == expected, resp.text
