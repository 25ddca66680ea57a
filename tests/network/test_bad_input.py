"""Bad input on every network and card endpoint: a 4xx problem naming the field, never a 500."""

from __future__ import annotations

import pytest

from tests.factories import auth, register

REGISTER_CASES = [
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": 12}, "name"),
    ({"name": "A", "sponsor_code": "X" * 17}, "sponsor_code"),
    ({"name": "A", "phone": "call me"}, "phone"),
    ({"name": "A", "region": "no spaces allowed"}, "region"),
    ({"name": "A", "unknown_field": 1}, "unknown_field"),
    ({}, "name"),
]


@pytest.mark.parametrize(("body", "field"), REGISTER_CASES)
async def test_register_validation(client, admin_headers, body, field):
    resp = await client.post("/api/v1/distributors", json=body, headers=admin_headers)
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["status"] == 422 and problem["type"].endswith("validation-error")
    assert any(field in e["field"] or field in e["message"] for e in problem["errors"]), problem


async def test_malformed_json_and_wrong_content(client, admin_headers):
    resp = await client.post(
        "/api/v1/distributors",
        content=b"{not json",
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert resp.status_code == 400 and resp.json()["code"] == "malformed-json"
    resp = await client.post(
        "/api/v1/distributors",
        content=b"[1, 2]",
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert resp.status_code in (400, 422)


async def test_path_and_query_validation(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    base = f"/api/v1/distributors/{root['id']}"
    for url in (
        "/api/v1/distributors/abc",
        "/api/v1/distributors/-1",
        "/api/v1/distributors/99999999999999999999999",
        f"{base}/downline?limit=0",
        f"{base}/downline?limit=501",
        f"{base}/downline?limit=abc",
        f"{base}/downline?max_depth=0",
        f"{base}/downline?cursor=@@@",
        f"{base}/downline?cursor=WzEsMiwzXQ",  # valid base64, wrong arity
    ):
        resp = await client.get(url, headers=admin_headers)
        assert 400 <= resp.status_code < 500, (url, resp.status_code)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/distributors/424242", headers=admin_headers)).status_code == 404


async def test_move_validation(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="D")
    url = f"/api/v1/distributors/{d['id']}/sponsor"
    for body in ({}, {"sponsor_id": "x"}, {"sponsor_id": -5}, {"sponsor_id": 2**70}):
        resp = await client.put(url, json=body, headers=admin_headers)
        assert resp.status_code == 422, (body, resp.text)
    assert (await client.put(url, json={"sponsor_id": 424242}, headers=admin_headers)).status_code == 404


async def test_card_paths(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    for url in ("/api/v1/cards/" + "9" * 30, "/api/v1/cards/nope"):
        resp = await client.get(url, headers=auth(root))
        assert resp.status_code in (404, 422), url
    resp = await client.post(
        "/api/v1/cards/" + root["card"]["number"] + "/loss-report",
        content=b"{bad",
        headers={**auth(root), "content-type": "application/json"},
    )
    assert resp.status_code < 500
