"""Payout accounts through the API: validation naming the field, encryption at rest, masked
responses, audit, the change event, cooling-off, and the registration bank_account migrated into an
account that needs confirmation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.kit.crypto import decrypt
from tests.conftest import bearer
from tests.factories import RESIDENT_ID, auth, card_number, register, set_payout_account

SECRET = b"test-secret-key"


def path(d):
    return f"/api/v1/distributors/{d['id']}/payout-account"


async def test_first_account_is_stored_encrypted_masked_and_audited(client, admin_headers, session, make_key):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="张三")
    assert (await client.get(path(d), headers=auth(d))).status_code == 404
    number = card_number(7)
    view = await set_payout_account(client, d, expect=201, holder_name="张三", account_number=number)
    assert view["account_number"] == "****" + number[-4:] and view["resident_id"] == "****" + RESIDENT_ID[-4:]
    assert view["holder_name"] == "张*" and view["status"] == "active" and view["cooling_off"] is False
    row = (
        await session.execute(text("SELECT * FROM payout_account WHERE distributor_id = :d"), {"d": d["id"]})
    ).one()
    assert (
        number.encode() not in bytes(row.account_number_enc)
        and decrypt(SECRET, row.account_number_enc) == number
    )
    assert decrypt(SECRET, row.resident_id_enc) == RESIDENT_ID
    tax_id = (
        await session.execute(text("SELECT * FROM tax_identity WHERE distributor_id = :d"), {"d": d["id"]})
    ).one()
    assert (
        decrypt(SECRET, tax_id.name_enc) == "张三" and decrypt(SECRET, tax_id.resident_id_enc) == RESIDENT_ID
    )
    audit = (
        await session.execute(
            text(
                "SELECT action, after FROM audit_log WHERE subject_id = :d AND action LIKE 'payout_account.%'"
            ),
            {"d": str(d["id"])},
        )
    ).one()
    assert audit.action == "payout_account.created" and number not in str(audit.after)
    event = (
        await session.execute(
            text(
                "SELECT payload FROM outbox_event WHERE topic = 'payout_account.changed' AND distributor_id = :d"
            ),
            {"d": d["id"]},
        )
    ).scalar_one()
    assert event["distributor_id"] == d["id"] and event["account_masked"] == "****" + number[-4:]
    # finance reads it masked too; another distributor gets 404
    fin = bearer(await make_key("finance", name="fin"))
    assert (await client.get(path(d), headers=fin)).json()["account_number"] == "****" + number[-4:]
    assert (await client.get(path(d), headers=auth(root))).status_code == 404
    assert (
        await client.put(
            path(d),
            headers=auth(root),
            json={
                "method": "alipay",
                "holder_name": "x",
                "account_number": "13800138000",
                "resident_id": RESIDENT_ID,
            },
        )
    ).status_code == 404
    assert (await client.put(path(d), headers=fin, json={})).status_code == 403


async def test_bad_input_is_a_422_naming_the_field(client, admin_headers):
    d = await register(client, admin_headers, name="Root")
    cases = [
        ({"account_number": "4111 1111 1111 1112"}, "account_number"),
        ({"account_number": "12345"}, "account_number"),
        ({"resident_id": "110105194912310021"}, "resident_id"),
        ({"bank_name": None}, "bank_name"),
        (
            {"method": "alipay", "account_number": "not-a-phone", "bank_name": None, "bank_branch": None},
            "account_number",
        ),
        (
            {"method": "wechat", "account_number": "oops!", "bank_name": None, "bank_branch": None},
            "account_number",
        ),
        ({"method": "paypal"}, "method"),
    ]
    for fields, field in cases:
        resp = await set_payout_account(client, d, expect=422, **fields)
        assert resp["status"] == 422 and field in str(resp["errors"]), (fields, resp)


async def test_a_change_starts_cooling_off_and_supersedes_the_old_version(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Li")
    await set_payout_account(client, d)
    # the owner needs a one-time code to change it
    resp = await set_payout_account(
        client, d, expect=422, method="alipay", account_number="13800138000", bank_name=None, bank_branch=None
    )
    assert resp["code"] == "verification-code-required" and "code" in str(resp["errors"])
    # an admin may change it (audited); cooling-off starts either way
    view = await set_payout_account(
        client,
        d,
        headers=admin_headers,
        expect=200,
        method="alipay",
        account_number="13800138000",
        bank_name=None,
        bank_branch=None,
    )
    assert view["method"] == "alipay" and view["account_number"] == "****8000" and view["cooling_off"] is True
    until = datetime.fromisoformat(view["cooling_until"])
    assert timedelta(hours=71) < until - datetime.now(UTC) <= timedelta(hours=72)
    versions = (
        await session.execute(
            text(
                "SELECT status, superseded_at IS NULL AS current FROM payout_account WHERE distributor_id = :d ORDER BY id"
            ),
            {"d": d["id"]},
        )
    ).all()
    assert [tuple(v) for v in versions] == [("superseded", False), ("active", True)]
    actions = list(
        await session.scalars(
            text(
                "SELECT action FROM audit_log WHERE subject_id = :d AND action LIKE 'payout_account.%' ORDER BY id"
            ),
            {"d": str(d["id"])},
        )
    )
    assert actions == ["payout_account.created", "payout_account.changed"]


async def test_registration_bank_account_needs_confirmation(client, admin_headers, session):
    root = await register(client, admin_headers, name="Root")
    d = await register(client, sponsor=root, name="Old", bank_account="6222 1111 0003")
    view = (await client.get(path(d), headers=auth(d))).json()
    assert view["status"] == "needs_confirmation" and view["account_number"] == "****0003"
    enc = await session.scalar(
        text("SELECT account_number_enc FROM payout_account WHERE distributor_id = :d"), {"d": d["id"]}
    )
    assert decrypt(SECRET, enc) == "6222 1111 0003"
