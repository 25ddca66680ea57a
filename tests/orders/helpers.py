"""Helpers for the money tests (orders, commissions, ledger, ranks)."""

from __future__ import annotations

import itertools
from typing import Any

from litestar.testing import AsyncTestClient

from tests.factories import auth

_ids = itertools.count(1)


def order_body(seller: dict[str, Any], amount: str = "100.00", **fields: Any) -> dict[str, Any]:
    body = {"external_id": f"ext-{next(_ids)}", "card_number": seller["card"]["number"], "amount": amount}
    body.update(fields)
    return body


async def place(
    client: AsyncTestClient,
    seller: dict[str, Any],
    amount: str = "100.00",
    headers: dict[str, str] | None = None,
    expect: int = 201,
    **fields: Any,
) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/orders", json=order_body(seller, amount, **fields), headers=headers or auth(seller)
    )
    assert resp.status_code == expect, resp.text
    return resp.json()


async def refund(
    client: AsyncTestClient,
    order: dict[str, Any],
    amount: str,
    headers: dict[str, str],
    external_id: str | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    resp = await client.post(
        f"/api/v1/orders/{order['id']}/refunds",
        json={"external_id": external_id or f"rf-{next(_ids)}", "amount": amount},
        headers=headers,
    )
    assert resp.status_code == expect, resp.text
    return resp.json()


async def balances(client: AsyncTestClient, d: dict[str, Any]) -> dict[str, str]:
    resp = await client.get(f"/api/v1/distributors/{d['id']}/balances", headers=auth(d))
    assert resp.status_code == 200, resp.text
    return resp.json()


async def verify_ok(client: AsyncTestClient, admin_headers: dict[str, str]) -> None:
    resp = await client.get("/api/v1/ledger/verify", headers=admin_headers)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
