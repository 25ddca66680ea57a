"""Who a payout run pays, and why the others are skipped: payout account (none, unconfirmed, in
cooling-off), closed or erased, violation hold, open risk case (configurable). A run with no items
is refused. Also the migration of registration's bank_account into a payout account."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import secrets
import zipfile

import psycopg
from sqlalchemy import text

from distnet.kit.auth import SYSTEM
from distnet.kit.crypto import encrypt
from distnet.payouts.errors import EmptyRun
from distnet.payouts.service import create_run
from tests.settlement.builders import (
    SECRET,
    add_available,
    add_distributors,
    add_hold,
    add_payout_accounts,
    days_ago,
)

RUNS = "/api/v1/payout-runs"


async def _run(client, finance, key, **body):
    return await client.post(RUNS, json=body, headers={**finance["finance"], "Idempotency-Key": key})


async def test_every_skipped_distributor_is_listed_with_its_reasons(client, finance, sessionmaker):
    async with sessionmaker() as s:
        paid, cooling, none, unconfirmed, closed, held, risky, below = ids = await add_distributors(
            s, 8, bank=False
        )
        await add_payout_accounts(s, [paid, closed, held, risky, below])
        await add_payout_accounts(s, [cooling], cooling_until=days_ago(-1))  # a change made yesterday: 72 h
        await s.execute(
            text(
                "INSERT INTO payout_account (distributor_id, method, account_number_enc, status, "
                "cooling_until) VALUES (:d, 'bank_card', :a, 'needs_confirmation', now())"
            ),
            {"d": unconfirmed, "a": encrypt(SECRET, "6222 1111")},
        )
        for d in ids:
            await add_available(s, d, 500 if d == below else 20_000)
        await s.execute(
            text("UPDATE distributor SET status = 'closed', closed_at = now() WHERE id = :d"), {"d": closed}
        )
        await add_hold(s, held, "order_brushing")
        await add_hold(s, risky, "maintenance", ends_at=None)  # maintenance never blocks payouts
        await s.execute(
            text(
                "INSERT INTO risk_case (rule, rule_version, reason, score, subject_key, subject, evidence, action) "
                "VALUES ('identity_cluster', 1, 'fake_promotion', 1, 'k', CAST(:subject AS jsonb), '{}', 'review')"
            ),
            {"subject": json.dumps({"distributor_ids": [risky, held]})},
        )
        await s.commit()
    resp = await _run(client, finance, "e1", min_amount="100.00")
    assert resp.status_code == 201, resp.text
    run = resp.json()
    assert run["item_count"] == 1
    items = (await client.get(f"{RUNS}/{run['id']}/items", headers=finance["approver"])).json()["items"]
    assert [i["distributor_id"] for i in items] == [paid]
    skipped = (await client.get(f"{RUNS}/{run['id']}/skipped", headers=finance["approver"])).json()
    assert {s["distributor_id"]: s["reasons"] for s in skipped["items"]} == {
        cooling: ["payout_account_cooling_off"],
        none: ["no_payout_account"],
        unconfirmed: ["payout_account_unconfirmed"],
        closed: ["closed"],
        held: ["violation_hold", "open_risk_case"],
        risky: ["open_risk_case"],
    }  # `below` is under the minimum: not skipped, simply not due
    assert all(s["available"] == "200.00" for s in skipped["items"])
    only = (
        await client.get(
            f"{RUNS}/{run['id']}/skipped?reason=open_risk_case&limit=1", headers=finance["finance"]
        )
    ).json()
    assert [s["distributor_id"] for s in only["items"]] == [held] and only["next_cursor"]
    rest = (
        await client.get(
            f"{RUNS}/{run['id']}/skipped?reason=open_risk_case&cursor={only['next_cursor']}",
            headers=finance["finance"],
        )
    ).json()
    assert [s["distributor_id"] for s in rest["items"]] == [risky] and rest["next_cursor"] is None
    detail = (await client.get(f"{RUNS}/{run['id']}", headers=finance["finance"])).json()
    assert {r["reason"]: r["distributors"] for r in detail["skipped"]}["open_risk_case"] == 2
    bad = await client.get(f"{RUNS}/{run['id']}/skipped?reason=nope", headers=finance["finance"])
    assert bad.status_code == 400 or bad.status_code == 422


async def test_cooling_off_skips_a_run_and_the_next_run_after_it_pays(client, finance, sessionmaker):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1, bank=False)
        await add_payout_accounts(s, [d], cooling_until=days_ago(-2))
        await add_available(s, d, 30_000)
        await s.commit()
    resp = await _run(client, finance, "c1")
    assert resp.status_code == 422 and resp.json()["code"] == "empty-run"
    assert resp.json()["skipped"] == [
        {"reason": "payout_account_cooling_off", "distributors": 1, "amount": "300.00"}
    ]
    async with sessionmaker() as s:
        assert await s.scalar(text("SELECT count(*) FROM payout_run")) == 0  # refused: nothing kept
        await s.execute(text("UPDATE payout_account SET cooling_until = now() - interval '1 second'"))
        await s.commit()
    resp = await _run(client, finance, "c2")
    assert resp.status_code == 201 and resp.json()["item_count"] == 1


async def test_open_risk_case_rule_is_configurable(sessionmaker, settings):
    async with sessionmaker() as s:
        [d] = await add_distributors(s, 1)
        await add_available(s, d, 30_000)
        await s.execute(
            text(
                "INSERT INTO risk_case (rule, rule_version, reason, score, subject_key, subject, evidence, action) "
                "VALUES ('repeat_buyer', 1, 'order_brushing', 1, 'k', CAST(:subject AS jsonb), '{}', 'review')"
            ),
            {"subject": json.dumps({"distributor_ids": [d]})},
        )
        await s.commit()
    async with sessionmaker() as s:
        try:
            await create_run(s, settings=settings, principal=SYSTEM)
            raise AssertionError("an open risk case must skip the distributor by default")
        except EmptyRun as exc:
            assert exc.extra["skipped"][0]["reason"] == "open_risk_case"
        await s.rollback()
    relaxed = dataclasses.replace(
        settings, business=dataclasses.replace(settings.business, payout_skip_open_risk_case=False)
    )
    async with sessionmaker() as s:
        run = await create_run(s, settings=relaxed, principal=SYSTEM)
        assert run.item_count == 1
        await s.rollback()


async def test_an_empty_run_is_refused_and_an_old_empty_draft_cannot_be_approved(
    client, finance, sessionmaker
):
    resp = await _run(client, finance, "x1")
    assert resp.status_code == 422 and resp.json()["code"] == "empty-run" and resp.json()["skipped"] == []
    async with sessionmaker() as s:  # a draft with no items from before this rule
        run_id = await s.scalar(
            text(
                "INSERT INTO payout_run (min_amount, cutoff, created_by) "
                "VALUES (1, now(), 'old') RETURNING id"
            )
        )
        await s.commit()
    resp = await client.post(f"{RUNS}/{run_id}/approve", headers=finance["approver"])
    assert resp.status_code == 422 and resp.json()["code"] == "empty-run"


async def test_skipped_sheet_in_the_xlsx(client, finance, sessionmaker):
    async with sessionmaker() as s:
        paid, none = await add_distributors(s, 2, bank=False)
        await add_payout_accounts(s, [paid])
        await add_available(s, paid, 20_000)
        await add_available(s, none, 20_000)
        await s.commit()
    run = (await _run(client, finance, "s1")).json()
    assert (await client.post(f"{RUNS}/{run['id']}/approve", headers=finance["approver"])).status_code == 200
    resp = await client.get(f"{RUNS}/{run['id']}/export?format=xlsx", headers=finance["finance"])
    book = zipfile.ZipFile(io.BytesIO(resp.content))
    names = book.read("xl/workbook.xml").decode()
    assert 'name="Skipped"' in names
    sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
    assert any("no_payout_account" in book.read(n).decode() for n in sheets)


def test_migration_moves_registration_bank_accounts(database_url):
    """0070 turns distributor.bank_account_enc into a payout account that needs confirmation."""
    from distnet.kit.embedded import create_database, drop_database
    from distnet.migrate import upgrade

    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    name = f"distnet_test_mig_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(admin, name)
    try:
        upgrade(url, "0006")
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        token = encrypt(SECRET, "6222 1111 0009")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO distributor (id, code, name, depth, path, bank_account_enc) "
                "VALUES (1, 'A', 'a', 0, '1', %s), (2, 'B', 'b', 0, '2', NULL)",
                (token,),
            )
        upgrade(url)
        with psycopg.connect(plain, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT distributor_id, method, status, account_number_enc FROM payout_account"
            ).fetchall()
            assert [(r[0], r[1], r[2], bytes(r[3])) for r in rows] == [
                (1, "bank_card", "needs_confirmation", token)
            ]
            cols = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'distributor'"
                )
            }
            assert "bank_account_enc" not in cols
    finally:
        drop_database(admin, name)


async def test_a_verified_contact_can_be_a_condition_of_the_first_payout(sessionmaker, settings):
    strict = dataclasses.replace(
        settings, notify=dataclasses.replace(settings.notify, require_verified_contact=True)
    )
    async with sessionmaker() as s:
        unverified, verified = await add_distributors(s, 2)
        await s.execute(
            text("UPDATE distributor SET email_verified_at = now() WHERE id = :d"), {"d": verified}
        )
        for d in (unverified, verified):
            await add_available(s, d, 20_000)
        await s.commit()
    async with sessionmaker() as s:  # off by default: both are paid
        assert (await create_run(s, settings=settings, principal=SYSTEM)).item_count == 2
        await s.rollback()
    async with sessionmaker() as s:
        run = await create_run(s, settings=strict, principal=SYSTEM)
        assert run.item_count == 1
        skipped = (
            await s.execute(
                text("SELECT distributor_id, reasons FROM payout_skip WHERE run_id = :r"), {"r": run.id}
            )
        ).all()
        assert [(r.distributor_id, list(r.reasons)) for r in skipped] == [
            (unverified, ["contact_unverified"])
        ]
        # once paid, later payouts need no verified contact
        await s.execute(text("UPDATE payout_item SET status = 'paid' WHERE run_id = :r"), {"r": run.id})
        await s.execute(
            text("UPDATE distributor SET email_verified_at = NULL WHERE id = :d"), {"d": verified}
        )
        await add_available(s, verified, 20_000)
        await add_available(s, unverified, 1)
        second = await create_run(s, settings=strict, principal=SYSTEM)
        items = list(
            await s.scalars(
                text("SELECT distributor_id FROM payout_item WHERE run_id = :r"), {"r": second.id}
            )
        )
        assert items == [verified]
        await s.rollback()
