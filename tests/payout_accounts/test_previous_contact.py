"""Account takeover through the contact: the attacker first replaces the verified e-mail, then the
payout account. The replaced address is kept (encrypted) and told of both changes, so the real owner
hears of them; it is never shown unmasked, and the owner's export lists it masked."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.factories import auth, card_number, register, set_payout_account
from tests.notifications.conftest import deliver_all, run_consumers


def _code(mail) -> str:
    return _code_in(mail.get_content())


def _code_in(text_: str) -> str:
    return re.search(r"\b(\d{6})\b", text_).group(1)


async def test_a_replaced_email_hears_of_the_change_and_of_the_payout_account_change(
    client, admin_headers, sessionmaker, session, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    owner = await register(client, admin_headers, name="赵六", email="owner@example.com")
    await deliver_all(sessionmaker, notify_settings)
    resp = await client.post(
        "/api/v1/me/contact/verify",
        headers=auth(owner),
        json={"channel": "email", "code": _code(mailbox.to("owner@example.com")[0])},
    )
    assert resp.status_code == 200 and resp.json()["email_verified"] is True
    await set_payout_account(client, owner, expect=201)  # the first account: no code
    # the owner mutes nothing that matters: the contact notice is mandatory
    muted = await client.put(
        "/api/v1/me/notification-preferences", headers=auth(owner), json={"muted_kinds": ["contact_changed"]}
    )
    assert muted.status_code == 422 and muted.json()["errors"][0]["field"] == "muted_kinds"

    # the (stolen) key replaces the e-mail with a confirmed new one
    resp = await client.post(
        "/api/v1/me/contact", headers=auth(owner), json={"channel": "email", "value": "attacker@example.com"}
    )
    assert resp.status_code == 201
    await deliver_all(sessionmaker, notify_settings)
    resp = await client.post(
        "/api/v1/me/contact/verify",
        headers=auth(owner),
        json={"channel": "email", "code": _code(mailbox.to("attacker@example.com")[0])},
    )
    assert resp.status_code == 200 and resp.json()["email"] == "a***@example.com"
    stored = (
        await session.execute(
            text("SELECT channel, address_enc, replaced_at FROM previous_contact WHERE distributor_id = :d"),
            {"d": owner["id"]},
        )
    ).all()
    assert len(stored) == 1 and stored[0].channel == "email"
    assert b"owner@example.com" not in stored[0].address_enc  # encrypted at rest
    outcomes = await deliver_all(sessionmaker, notify_settings)
    assert sorted(outcomes.values()) == ["sent", "sent"]  # to the old address and to the new one
    [told] = mailbox.to("owner@example.com")[1:]
    body = told.get_content()
    assert (
        "联系方式已更改" in told["Subject"] or "contact" in told["Subject"]
    ) and "a***@example.com" in body
    assert "attacker@example.com" not in body
    assert len(mailbox.to("attacker@example.com")) == 2  # the code, then the notice

    # then the payout account: the code goes to the new address, the notice to both
    assert (
        await client.post(f"/api/v1/distributors/{owner['id']}/payout-account/code", headers=auth(owner))
    ).status_code == 201
    await deliver_all(sessionmaker, notify_settings)
    code = _code(mailbox.to("attacker@example.com")[-1])
    new_number = card_number(910_001)
    await set_payout_account(client, owner, expect=200, account_number=new_number, code=code)
    await run_consumers(sessionmaker)
    await run_consumers(sessionmaker)  # a redelivered event notifies nobody twice
    await deliver_all(sessionmaker, notify_settings)
    last4 = "****" + new_number[-4:]
    assert len([m for m in mailbox.to("owner@example.com") if last4 in m.get_content()]) == 1
    assert len([m for m in mailbox.to("attacker@example.com") if last4 in m.get_content()]) == 1

    # the replaced address is shown masked only, everywhere the owner (or the attacker) can look
    profile = await client.get("/api/v1/me/profile", headers=auth(owner))
    inbox = await client.get("/api/v1/me/notifications", headers=auth(owner))
    export = await client.get("/api/v1/me/export", headers=auth(owner))
    for resp in (profile, inbox, export):
        assert resp.status_code == 200 and "owner@example.com" not in resp.text
    kinds = [i["kind"] for i in inbox.json()["items"]]
    assert kinds[0] == "payout_account_changed" and kinds.count("contact_changed") == 1
    [previous] = export.json()["previous_contacts"]
    assert previous["channel"] == "email" and previous["address"] == "o***@example.com"
    assert previous["replaced_at"] is not None


async def test_a_contact_replaced_long_ago_or_current_again_is_not_told_twice(
    client, admin_headers, sessionmaker, session, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    owner = await register(client, admin_headers, name="钱七", email="a@example.com")
    await deliver_all(sessionmaker, notify_settings)
    await client.post(
        "/api/v1/me/contact/verify",
        headers=auth(owner),
        json={"channel": "email", "code": _code(mailbox.to("a@example.com")[0])},
    )
    await set_payout_account(client, owner, expect=201)
    for value in ("b@example.com", "a@example.com", "c@example.com"):  # a -> b -> a -> c
        await client.post(
            "/api/v1/me/contact", headers=auth(owner), json={"channel": "email", "value": value}
        )
        await deliver_all(sessionmaker, notify_settings)
        resp = await client.post(
            "/api/v1/me/contact/verify",
            headers=auth(owner),
            json={"channel": "email", "code": _code(mailbox.to(value)[-1])},
        )
        assert resp.status_code == 200, resp.text
        await deliver_all(sessionmaker, notify_settings)
    assert (
        await session.scalar(
            text("SELECT count(*) FROM previous_contact WHERE distributor_id = :d"), {"d": owner["id"]}
        )
        == 3
    )
    # kept: a (replaced by b), b (replaced by a), a (replaced by c); b's was more than 30 days ago
    await session.execute(
        text(
            "UPDATE previous_contact SET replaced_at = now() - interval '31 days' "
            "WHERE id = (SELECT id FROM previous_contact WHERE distributor_id = :d "
            "ORDER BY id OFFSET 1 LIMIT 1)"
        ),
        {"d": owner["id"]},
    )
    await session.commit()
    await client.post(f"/api/v1/distributors/{owner['id']}/payout-account/code", headers=auth(owner))
    await deliver_all(sessionmaker, notify_settings)
    new_number = card_number(910_002)
    await set_payout_account(
        client, owner, expect=200, account_number=new_number, code=_code(mailbox.to("c@example.com")[-1])
    )
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    last4 = "****" + new_number[-4:]
    told = {
        a: len([m for m in mailbox.to(a) if last4 in m.get_content()])
        for a in ("a@example.com", "b@example.com", "c@example.com")
    }
    assert told == {"a@example.com": 1, "b@example.com": 0, "c@example.com": 1}


async def test_a_replaced_phone_hears_of_the_change_by_sms(
    client, admin_headers, sessionmaker, notify_settings, smtp_server, caplog
):
    """The SMS path of the same defence: the replaced (verified) phone is told of the phone change
    and of the payout account change that follows; the new phone gets the codes."""
    root = await register(client, admin_headers, name="Root")
    consent = {"terms_version": "2026-12", "privacy_version": "2026-12", "sms": True, "channel": "app"}
    old_phone, new_phone = "+8613800000031", "+8613900000032"
    resp = await client.post(
        "/api/v1/distributors",
        json={"name": "孙八", "sponsor_code": root["code"], "phone": old_phone, "consent": consent},
    )
    assert resp.status_code == 201, resp.text
    owner = resp.json()

    def texts(phone: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if phone in r.getMessage()]

    with caplog.at_level("INFO", logger="distnet.notifications.channels"):
        await deliver_all(sessionmaker, notify_settings)
        resp = await client.post(
            "/api/v1/me/contact/verify",
            headers=auth(owner),
            json={"channel": "phone", "code": _code_in(texts(old_phone)[0])},
        )
        assert resp.status_code == 200 and resp.json()["phone_verified"] is True
        await set_payout_account(client, owner, expect=201)

        resp = await client.post(
            "/api/v1/me/contact", headers=auth(owner), json={"channel": "phone", "value": new_phone}
        )
        assert resp.status_code == 201, resp.text
        await deliver_all(sessionmaker, notify_settings)
        resp = await client.post(
            "/api/v1/me/contact/verify",
            headers=auth(owner),
            json={"channel": "phone", "code": _code_in(texts(new_phone)[-1])},
        )
        assert resp.status_code == 200, resp.text
        before = len(texts(old_phone))
        await deliver_all(sessionmaker, notify_settings)
        told = texts(old_phone)[before:]
        assert len(told) == 1 and new_phone not in told[0]  # the notice never holds the new number in full

        assert (
            await client.post(f"/api/v1/distributors/{owner['id']}/payout-account/code", headers=auth(owner))
        ).status_code == 201
        await deliver_all(sessionmaker, notify_settings)
        new_number = card_number(910_003)
        await set_payout_account(
            client, owner, expect=200, account_number=new_number, code=_code_in(texts(new_phone)[-1])
        )
        await run_consumers(sessionmaker)
        await run_consumers(sessionmaker)  # a redelivered event texts nobody twice
        await deliver_all(sessionmaker, notify_settings)
    last4 = new_number[-4:]
    assert len([t for t in texts(old_phone) if last4 in t]) == 1
    assert len([t for t in texts(new_phone) if last4 in t]) == 1
