"""Small factories over the real services (no factory framework)."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient


async def register(
    client: AsyncTestClient,
    headers: dict[str, str] | None = None,
    *,
    sponsor: dict | None = None,
    name: str = "Ann",
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "consent": {"terms_version": "2026-12", "privacy_version": "2026-12"},
        **fields,
    }
    if sponsor is not None:
        body["sponsor_code"] = sponsor["code"]
    resp = await client.post("/api/v1/distributors", json=body, headers=headers or {})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def create_plan(
    client: AsyncTestClient, headers: dict[str, str], *, name: str, qualifications: list[dict[str, Any]]
) -> dict[str, Any]:
    """A three-level commission plan effective now, rate 100 x level bps for every rank, with the
    given qualifications."""
    rates = [
        {"level": lv, "rank": rk, "rate_bps": 100 * lv}
        for lv in (1, 2, 3)
        for rk in ("member", "silver", "gold", "platinum")
    ]
    resp = await client.post(
        "/api/v1/commission-plans",
        headers=headers,
        json={"name": name, "max_levels": 3, "rates": rates, "qualifications": qualifications},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def make_tree(
    client: AsyncTestClient, admin_headers: dict[str, str], depth: int
) -> list[dict[str, Any]]:
    """A chain root -> d1 -> d2 ... of ``depth + 1`` distributors."""
    chain = [await register(client, admin_headers, name="root")]
    for i in range(depth):
        chain.append(await register(client, sponsor=chain[-1], name=f"d{i + 1}"))
    return chain


def auth(d: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {d['api_key']}"}


RESIDENT_ID = "11010519491231002X"  # GB 11643's own example, check character X


def card_number(seed: int) -> str:
    """A 19-digit bank card number with its Luhn check digit."""
    from distnet.payout_accounts.rules import luhn_ok

    body = f"622202{seed:012d}"
    return body + next(d for d in "0123456789" if luhn_ok(body + d))


async def set_payout_account(
    client: AsyncTestClient,
    d: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    expect: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """PUT a payout account (a bank card by default) as the owner, or with ``headers``."""
    body = {
        "method": "bank_card",
        "holder_name": d.get("name") or "持卡人",
        "account_number": card_number(d["id"]),
        "bank_name": "中国工商银行",
        "bank_branch": "北京分行",
        "resident_id": RESIDENT_ID,
        **fields,
    }
    resp = await client.put(
        f"/api/v1/distributors/{d['id']}/payout-account", json=body, headers=headers or auth(d)
    )
    if expect is not None:
        assert resp.status_code == expect, resp.text
    else:
        assert resp.status_code in (200, 201), resp.text
    return resp.json()


async def closure_code(client: AsyncTestClient, d: dict[str, Any]) -> str:
    """Ask for a closure code and read it where it went (the inbox of a distributor without a
    verified contact)."""
    import re

    resp = await client.post("/api/v1/me/closure/code", headers=auth(d))
    assert resp.status_code == 201, resp.text
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(d))).json()
    body = next(i["body"] for i in inbox["items"] if i["kind"] == "verification_code")
    return re.search(r"\b(\d{6})\b", body).group(1)


async def close_account(client: AsyncTestClient, d: dict[str, Any], *, reason: str = "no_longer_selling"):
    """The owner's verified closure; returns the response."""
    code = await closure_code(client, d)
    return await client.post(
        f"/api/v1/distributors/{d['id']}/closure", headers=auth(d), json={"code": code, "reason": reason}
    )
