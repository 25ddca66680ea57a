"""A request's dependencies are resolved one after another (kit/http._resolve_in_turn), not in an
anyio task group per request: the same values, without a task per dependency."""

from __future__ import annotations

from litestar._kwargs import kwargs_model

from tests.factories import auth, make_tree


async def test_dependencies_are_resolved_without_a_task_group(client, admin_headers, monkeypatch) -> None:
    root, a = await make_tree(client, admin_headers, 1)

    def no_task_group(*args, **kwargs):
        raise AssertionError("a task group was created to resolve dependencies")

    monkeypatch.setattr(kwargs_model, "create_task_group", no_task_group)
    # session, settings and principal (one level of dependencies), and the body
    resp = await client.post(
        "/api/v1/orders",
        json={"external_id": "dep-1", "card_number": a["card"]["number"], "amount": "10.00"},
        headers=auth(a),
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["seller_id"] == a["id"]
    me = await client.get("/api/v1/me", headers=auth(a))
    assert me.status_code == 200 and me.json()["id"] == a["id"]
