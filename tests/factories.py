"""Small factories over the real services (no factory framework)."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient


async def register(client: AsyncTestClient, headers: dict[str, str] | None = None, *, sponsor: dict | None = None,
                   name: str = "Ann", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **fields}
    if sponsor is not None:
        body["sponsor_code"] = sponsor["code"]
    resp = await client.post("/api/v1/distributors", json=body, headers=headers or {})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def make_tree(client: AsyncTestClient, admin_headers: dict[str, str], depth: int) -> list[dict[str, Any]]:
    """A chain root -> d1 -> d2 ... of ``depth + 1`` distributors."""
    chain = [await register(client, admin_headers, name="root")]
    for i in range(depth):
        chain.append(await register(client, sponsor=chain[-1], name=f"d{i + 1}"))
    return chain


def auth(d: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {d['api_key']}"}
