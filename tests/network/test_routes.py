"""Registration, upline/downline, team stats, moves (cycle refusal), closure compression."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import auth, close_account, make_tree, register


async def test_register_root_requires_admin(client, admin_headers):
    resp = await client.post("/api/v1/distributors", json={"name": "Root"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["errors"][0]["field"] == "sponsor_code"

    root = await register(client, admin_headers, name="Root", region="sh")
    assert root["sponsor_id"] is None
    assert root["rank"] == "member"
    assert root["card"]["status"] == "active" and len(root["card"]["number"]) == 16
    assert root["api_key"].startswith("dn_")
    assert len(root["code"]) == 8


async def test_register_with_sponsor_and_unknown_code(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    child = await register(client, sponsor=root, name="Child", phone="+86 138 0000 0000")
    assert child["sponsor_id"] == root["id"]
    resp = await client.post("/api/v1/distributors", json={"name": "X", "sponsor_code": "ZZZZZZZZ"})
    assert resp.status_code == 422
    assert resp.json()["code"] == "unknown-sponsor"
    # codes are case-insensitive when typed
    lower = await register(client, name="Y", sponsor_code=root["code"].lower())
    assert lower["sponsor_id"] == root["id"]


async def test_personal_data_encrypted_and_hashed(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root", phone="13800000000", device_id="DEV-1")
    row = (
        await session.execute(
            text("SELECT phone_enc, phone_hash, device_hash FROM distributor WHERE id=:i"), {"i": root["id"]}
        )
    ).one()
    assert b"13800000000" not in bytes(row.phone_enc)
    other = await register(client, sponsor=root, name="Other", device_id="dev-1")
    row2 = (
        await session.execute(text("SELECT device_hash FROM distributor WHERE id=:i"), {"i": other["id"]})
    ).one()
    assert bytes(row2.device_hash) == bytes(row.device_hash)  # equal values match by keyed hash


async def test_me_and_self_only(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    a = await register(client, sponsor=root, name="A")
    b = await register(client, sponsor=root, name="B")
    me = (await client.get("/api/v1/me", headers=auth(a))).json()
    assert me["id"] == a["id"] and me["card"]["number"] == a["card"]["number"]
    assert set(me["balances"]) >= {"pending", "available", "withheld", "reserved", "paid", "owed"}
    for path in ("", "/upline", "/downline", "/team-stats"):
        resp = await client.get(f"/api/v1/distributors/{b['id']}{path}", headers=auth(a))
        assert resp.status_code == 404, path  # another distributor's data: never shown
        assert "name" not in resp.json()


async def test_upline_nearest_first_and_downline_levels(client, admin_headers):
    chain = await make_tree(client, admin_headers, 5)
    leaf = chain[-1]
    items = (await client.get(f"/api/v1/distributors/{leaf['id']}/upline", headers=auth(leaf))).json()[
        "items"
    ]
    assert [i["id"] for i in items] == [d["id"] for d in reversed(chain[:-1])]
    assert [i["level"] for i in items] == [1, 2, 3, 4, 5]
    first = (await client.get(f"/api/v1/distributors/{leaf['id']}/upline?limit=2", headers=auth(leaf))).json()
    assert [i["level"] for i in first["items"]] == [1, 2] and first["next_cursor"]
    rest = (
        await client.get(
            f"/api/v1/distributors/{leaf['id']}/upline?limit=10&cursor={first['next_cursor']}",
            headers=auth(leaf),
        )
    ).json()
    assert [i["level"] for i in rest["items"]] == [3, 4, 5] and rest["next_cursor"] is None

    root = chain[0]
    down = (
        await client.get(f"/api/v1/distributors/{root['id']}/downline?max_depth=3", headers=admin_headers)
    ).json()
    assert [i["level"] for i in down["items"]] == [1, 2, 3]
    assert down["next_cursor"] is None


async def test_downline_pagination_is_complete_and_ordered(client, admin_headers):
    root = await register(client, admin_headers, name="Root")
    kids = [await register(client, sponsor=root, name=f"k{i}") for i in range(5)]
    grandkids = [await register(client, sponsor=kids[0], name=f"g{i}") for i in range(3)]
    seen, cursor = [], None
    while True:
        url = f"/api/v1/distributors/{root['id']}/downline?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=auth(root))).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s["id"] for s in seen] == [k["id"] for k in kids] + [g["id"] for g in grandkids]
    assert [s["level"] for s in seen] == [1] * 5 + [2] * 3


async def test_team_stats_counts_per_level(client, admin_headers):
    chain = await make_tree(client, admin_headers, 3)
    await register(client, sponsor=chain[1], name="extra")
    stats = (
        await client.get(f"/api/v1/distributors/{chain[0]['id']}/team-stats", headers=auth(chain[0]))
    ).json()
    assert stats["total"] == 4
    assert [(lv["level"], lv["count"]) for lv in stats["by_level"]] == [(1, 1), (2, 2), (3, 1)]
    assert all(lv["sales"] == "0.00" for lv in stats["by_level"])


async def _upline_rows(session, distributor_id):
    rows = await session.execute(
        text("SELECT level, ancestor_id FROM distributor_upline WHERE distributor_id=:i ORDER BY level"),
        {"i": distributor_id},
    )
    return [tuple(r) for r in rows]


async def _check_consistency(session):
    """Every derived structure agrees with sponsor_id: path, depth and the bounded upline."""
    bad = await session.scalar(
        text("""
        SELECT count(*) FROM distributor d LEFT JOIN distributor s ON s.id = d.sponsor_id
         WHERE d.status <> 'closed' AND (
               (d.sponsor_id IS NULL AND d.path <> text2ltree(d.id::text))
            OR (d.sponsor_id IS NOT NULL AND d.path <> s.path || text2ltree(d.id::text)))""")
    )
    assert bad == 0
    bad_upline = await session.scalar(
        text("""
        SELECT count(*) FROM distributor d, generate_series(1, 3) k
         WHERE d.status <> 'closed' AND nlevel(d.path) - 1 - k >= 0
           AND NOT EXISTS (SELECT 1 FROM distributor_upline u WHERE u.distributor_id = d.id AND u.level = k
                AND u.ancestor_id = ltree2text(subpath(d.path, nlevel(d.path) - 1 - k, 1))::bigint)""")
    )
    assert bad_upline == 0
    missing_closure = await session.scalar(
        text("""
        SELECT count(*) FROM distributor d,
               unnest(string_to_array(ltree2text(d.path), '.')) WITH ORDINALITY AS a(anc, ord)
         WHERE d.status <> 'closed' AND ord <= d.depth
           AND NOT EXISTS (SELECT 1 FROM distributor_closure c WHERE c.ancestor_id = a.anc::bigint
                              AND c.descendant_id = d.id AND c.depth = d.depth - ord + 1)""")
    )
    assert missing_closure == 0
    closure_rows = await session.scalar(text("SELECT count(*) FROM distributor_closure"))
    expected_rows = await session.scalar(
        text("SELECT coalesce(sum(depth), 0) FROM distributor WHERE status <> 'closed'")
    )
    assert closure_rows == expected_rows


async def test_move_refuses_cycles_and_keeps_structures_consistent(client, admin_headers, session):
    chain = await make_tree(client, admin_headers, 4)  # root, d1..d4
    other = await register(client, admin_headers, name="other root")
    d1, d4 = chain[1], chain[4]
    resp = await client.put(
        f"/api/v1/distributors/{d1['id']}/sponsor", json={"sponsor_id": d4["id"]}, headers=admin_headers
    )
    assert resp.status_code == 409 and resp.json()["code"] == "network-cycle"
    resp = await client.put(
        f"/api/v1/distributors/{d1['id']}/sponsor", json={"sponsor_id": d1["id"]}, headers=admin_headers
    )
    assert resp.status_code == 409

    resp = await client.put(
        f"/api/v1/distributors/{d1['id']}/sponsor", json={"sponsor_id": other["id"]}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["sponsor_id"] == other["id"]
    assert await _upline_rows(session, d4["id"]) == [(1, chain[3]["id"]), (2, chain[2]["id"]), (3, d1["id"])]
    assert await _upline_rows(session, chain[2]["id"]) == [(1, d1["id"]), (2, other["id"])]
    await _check_consistency(session)
    audit = await session.scalar(
        text("SELECT count(*) FROM audit_log WHERE action='distributor.sponsor_moved'")
    )
    assert audit == 1
    # a distributor may not move itself
    resp = await client.put(
        f"/api/v1/distributors/{d1['id']}/sponsor", json={"sponsor_id": chain[0]["id"]}, headers=auth(d1)
    )
    assert resp.status_code == 403


async def test_closure_compresses_downline(client, admin_headers, session):
    chain = await make_tree(client, admin_headers, 4)
    root, d1, d2, d3 = chain[0], chain[1], chain[2], chain[3]
    sibling = await register(client, sponsor=d1, name="sibling")
    resp = await close_account(client, d1)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["state"] == "closed" and body["reason"] == "no_longer_selling"
    card = (await client.get(f"/api/v1/distributors/{d1['id']}", headers=auth(d1))).json()["card"]
    assert card["status"] == "cancelled"
    assert body["downline_moved_to"] == root["id"]
    d2_now = (await client.get(f"/api/v1/distributors/{d2['id']}", headers=auth(d2))).json()
    assert d2_now["sponsor_id"] == root["id"] and d2_now["depth"] == 1
    sib = (await client.get(f"/api/v1/distributors/{sibling['id']}", headers=auth(sibling))).json()
    assert sib["sponsor_id"] == root["id"]
    assert await _upline_rows(session, d3["id"]) == [(1, d2["id"]), (2, root["id"])]
    await _check_consistency(session)
    root_down = (await client.get(f"/api/v1/distributors/{root['id']}/downline", headers=auth(root))).json()
    assert d1["id"] not in [i["id"] for i in root_down["items"]]  # the closed account left the network
    up = (await client.get(f"/api/v1/distributors/{d3['id']}/upline", headers=auth(d3))).json()["items"]
    assert [i["id"] for i in up] == [d2["id"], root["id"]]
    erase_after = await session.scalar(
        text("SELECT erase_after - closed_at FROM distributor WHERE id=:i"), {"i": d1["id"]}
    )
    assert erase_after.days == 30
    # closing twice is a conflict, and the closed key can no longer act for a cancelled card
    again = await client.post(
        f"/api/v1/distributors/{d1['id']}/closure",
        headers=auth(d1),
        json={"code": "123456", "reason": "privacy"},
    )
    assert again.status_code == 409


async def test_closure_refused_with_reasons(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="D")
    await session.execute(
        text("""
        INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key)
        SELECT :d, id, 'manual', 'actor', 'test' FROM card WHERE distributor_id = :d"""),
        {"d": d["id"]},
    )
    await session.execute(
        text("UPDATE ledger_account SET balance = 500 WHERE distributor_id=:d AND kind='owed'"),
        {"d": d["id"]},
    )
    await session.commit()
    resp = await client.post(
        f"/api/v1/distributors/{d['id']}/closure",
        headers=auth(d),
        json={"code": "123456", "reason": "privacy"},
    )
    assert resp.status_code == 409
    codes = {r["code"] for r in resp.json()["reasons"]}
    assert codes == {"active_violation_hold", "money_owed"}


async def test_erasure_after_retention(client, admin_headers, session):
    from datetime import UTC, datetime, timedelta

    from distnet.network.service import erase_due_personal_data

    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Dora", phone="13900000000")
    assert (await close_account(client, d)).status_code == 200
    assert await erase_due_personal_data(session) == 0
    assert await erase_due_personal_data(session, now=datetime.now(UTC) + timedelta(days=31)) == 1
    await session.commit()
    row = (
        await session.execute(
            text("SELECT name, code, phone_enc FROM distributor WHERE id=:i"), {"i": d["id"]}
        )
    ).one()
    assert row.name == "erased" and row.code == d["code"] and row.phone_enc is None


async def test_moves_and_closures_keep_every_structure_consistent(client, admin_headers, session):
    """A random sequence of registrations, moves and closures: after each step the path, the
    closure table and the bounded upline agree with the sponsor edges."""
    import random

    rng = random.Random(5)
    people = [await register(client, admin_headers, name="r0")]
    for i in range(25):
        people.append(await register(client, sponsor=rng.choice(people), name=f"p{i}"))
    alive = {p["id"]: p for p in people}
    for step in range(20):
        ids = list(alive)
        if step % 4 == 3:
            victim = rng.choice(ids[1:])
            resp = await client.post(
                f"/api/v1/distributors/{victim}/closure",
                headers=admin_headers,
                json={"reason": "other", "reason_text": "consistency test"},
            )
            assert resp.status_code == 200, resp.text
            alive.pop(victim)
        else:
            mover, target = rng.sample(ids, 2)
            resp = await client.put(
                f"/api/v1/distributors/{mover}/sponsor", json={"sponsor_id": target}, headers=admin_headers
            )
            assert resp.status_code in (200, 409), resp.text
        await _check_consistency(session)


async def test_me_shows_debt_as_a_positive_owed_amount(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    await session.execute(
        text("""
        WITH t AS (INSERT INTO ledger_transaction (kind) VALUES ('test_debt') RETURNING id)
        INSERT INTO ledger_posting (transaction_id, account_id, amount)
        SELECT t.id, a.id, CASE a.kind WHEN 'owed' THEN -1234 ELSE 1234 END FROM t, ledger_account a
         WHERE a.distributor_id = :d AND a.kind IN ('owed', 'paid')"""),
        {"d": root["id"]},
    )
    await session.commit()
    me = (await client.get("/api/v1/me", headers=auth(root))).json()
    balances = (await client.get(f"/api/v1/distributors/{root['id']}/balances", headers=auth(root))).json()
    assert me["balances"]["owed"] == balances["owed"] == "12.34"
