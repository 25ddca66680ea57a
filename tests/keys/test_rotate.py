"""POST /me/keys/rotate: a new key with the same roles, the old one revoked at once, audited."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import auth, register


async def test_rotate_replaces_the_key(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Ann")
    old = auth(d)
    resp = await client.post("/api/v1/me/keys/rotate", headers=old)
    assert resp.status_code == 201, resp.text
    issued = resp.json()
    assert issued["roles"] == ["distributor"] and issued["api_key"].startswith("dn_")
    assert issued["revoked_prefixes"] == [d["api_key"].split("_")[1]]
    new = {"Authorization": f"Bearer {issued['api_key']}"}
    assert (await client.get("/api/v1/me", headers=new)).json()["id"] == d["id"]
    # the old key is refused at once (this process's cache forgot it)
    assert (await client.get("/api/v1/me", headers=old)).status_code == 401
    assert (await client.post("/api/v1/me/keys/rotate", headers=old)).status_code == 401
    stored = (
        await session.execute(
            text(
                "SELECT prefix, revoked_at IS NOT NULL AS revoked FROM api_key WHERE distributor_id = :d ORDER BY id"
            ),
            {"d": d["id"]},
        )
    ).all()
    assert [(r.prefix, r.revoked) for r in stored] == [
        (issued["revoked_prefixes"][0], True),
        (issued["prefix"], False),
    ]
    assert issued["api_key"].encode() not in b"".join(
        bytes(r.key_hash) for r in (await session.execute(text("SELECT key_hash FROM api_key"))).all()
    )
    logged = (
        await session.execute(
            text("SELECT before, after FROM audit_log WHERE action = 'api_key.rotated' AND subject_id = :d"),
            {"d": str(d["id"])},
        )
    ).one()
    assert logged.after == {"key": issued["prefix"]}


async def test_staff_and_admin_keys_have_nothing_to_rotate_here(client, admin_headers, make_key):
    finance = {"Authorization": f"Bearer {await make_key('finance')}"}
    assert (await client.post("/api/v1/me/keys/rotate", headers=finance)).status_code == 403
    assert (await client.post("/api/v1/me/keys/rotate", headers=admin_headers)).status_code == 404
