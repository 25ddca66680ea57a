"""An owner changes their payout account end to end through the API: a one-time code to the
verified e-mail (a real SMTP server), the change with the code, the notice to the owner, the
cooling-off that makes the next run skip them, and the run after it paying the NEW account."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import text

from distnet.ledger.verify import verify
from tests.factories import auth, card_number, register, set_payout_account
from tests.notifications.conftest import deliver_all, give_contact, run_consumers
from tests.orders.helpers import balances, place
from tests.settlement.builders import days_ago

RUNS = "/api/v1/payout-runs"


def _code(mail) -> str:
    return re.search(r"\b(\d{6})\b", mail.get_content()).group(1)


async def _run(client, finance, key):
    return await client.post(
        RUNS, json={"min_amount": "1.00"}, headers={**finance["finance"], "Idempotency-Key": key}
    )


async def test_owner_changes_the_account_by_code_and_the_run_after_cooling_off_pays_it(
    client, admin_headers, finance, sessionmaker, session, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    owner = await register(client, admin_headers, name="王五")
    url = f"/api/v1/distributors/{owner['id']}/payout-account"
    await set_payout_account(client, owner, expect=201)  # the first account: no code, no cooling-off
    await place(client, owner, "1000.00", placed_at=days_ago(20).isoformat())
    await client.post("/api/v1/settlements", headers=finance["finance"])

    # no verified contact yet: a code cannot go anywhere a stolen key cannot read
    resp = await client.post(f"{url}/code", headers=auth(owner))
    assert resp.status_code == 409 and resp.json()["code"] == "no-verified-contact"
    await give_contact(sessionmaker, notify_settings, owner["id"], email="wang@example.com")
    # another distributor cannot ask for the owner's code
    other = await register(client, admin_headers, name="Other")
    assert (await client.post(f"{url}/code", headers=auth(other))).status_code == 404

    resp = await client.post(f"{url}/code", headers=auth(owner))
    assert resp.status_code == 201, resp.text
    assert resp.json()["channel"] == "email" and resp.json()["sent_to"] == "w***@example.com"
    await deliver_all(sessionmaker, notify_settings)
    [mail] = mailbox.to("wang@example.com")
    code = _code(mail)
    assert "更改收款账户" in mail.get_content() or "payout account" in mail.get_content()
    new_number = card_number(900_001)
    wrong = await client.put(
        url,
        headers=auth(owner),
        json={
            "method": "bank_card",
            "holder_name": "王五",
            "account_number": new_number,
            "bank_name": "招商银行",
            "resident_id": "11010519491231002X",
            "code": "000000" if code != "000000" else "111111",
        },
    )
    assert (
        wrong.status_code == 422
        and wrong.json()["code"] == "code-wrong"
        and wrong.json()["attempts_left"] == 4
    )
    changed = await set_payout_account(
        client, owner, expect=200, account_number=new_number, bank_name="招商银行", code=code
    )
    assert changed["account_number"] == "****" + new_number[-4:] and changed["cooling_off"] is True
    # the code is used up
    again = await set_payout_account(
        client, owner, expect=422, account_number=card_number(900_002), code=code
    )
    assert again["code"] == "code-missing"

    # the owner is told, by inbox and e-mail
    await run_consumers(sessionmaker)
    await deliver_all(sessionmaker, notify_settings)
    notices = [m for m in mailbox.to("wang@example.com") if "****" + new_number[-4:] in m.get_content()]
    assert len(notices) == 1
    inbox = (await client.get("/api/v1/me/notifications", headers=auth(owner))).json()["items"]
    assert any(i["kind"] == "payout_account_changed" for i in inbox)

    # cooling-off: the next run skips the owner with the reason
    resp = await _run(client, finance, "cool-1")
    assert resp.status_code == 422 and resp.json()["code"] == "empty-run"
    assert resp.json()["skipped"] == [
        {
            "reason": "payout_account_cooling_off",
            "distributors": 1,
            "amount": (await balances(client, owner))["available"],
        }
    ]
    # ... until it ends (72 h later: moved into the past here)
    await session.execute(
        text(
            "UPDATE payout_account SET cooling_until = now() - interval '1 second' "
            "WHERE distributor_id = :d AND superseded_at IS NULL"
        ),
        {"d": owner["id"]},
    )
    await session.commit()
    resp = await _run(client, finance, "cool-2")
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["id"]
    assert (await client.post(f"{RUNS}/{run_id}/approve", headers=finance["approver"])).status_code == 200
    rows = list(
        csv.DictReader(
            io.StringIO(
                (await client.get(f"{RUNS}/{run_id}/export?format=csv", headers=finance["finance"])).text
            )
        )
    )
    [row] = rows
    assert row["account_reference"] == new_number  # the NEW account, in full, only in the bank file
    version = await session.scalar(
        text("SELECT payout_account_id FROM payout_item WHERE id = :i"), {"i": int(row["item_id"])}
    )
    assert version == changed["version_id"]
    done = await client.post(
        f"{RUNS}/{run_id}/results",
        headers=finance["finance"],
        json={"results": [{"item_id": int(row["item_id"]), "status": "paid", "reference": "BK-NEW"}]},
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"
    report = await verify(session)
    assert report.ok, [c for c in report.checks if not c.ok]
    actions = list(
        await session.scalars(
            text(
                "SELECT action FROM audit_log WHERE subject_id = :d AND action LIKE 'payout_account.%' ORDER BY id"
            ),
            {"d": str(owner["id"])},
        )
    )
    assert actions == ["payout_account.created", "payout_account.changed"]
