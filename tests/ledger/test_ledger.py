"""Balances, statements (json, csv, xlsx) and the ledger verification (API and CLI)."""

from __future__ import annotations

import csv
import io
import zipfile

from sqlalchemy import text
from typer.testing import CliRunner

from tests.conftest import bearer
from tests.factories import auth
from tests.orders.helpers import balances, place, refund, verify_ok


async def test_balances_roles(client, admin_headers, chain, make_key):
    root, a, b, c = chain
    await place(client, c, "100.00")
    resp = await client.get(f"/api/v1/distributors/{c['id']}/balances", headers=auth(c))
    assert resp.json() == {
        "distributor_id": c["id"],
        "currency": "CNY",
        "pending": "10.00",
        "available": "0.00",
        "withheld": "0.00",
        "reserved": "0.00",
        "paid": "0.00",
        "owed": "0.00",
    }
    assert (await client.get(f"/api/v1/distributors/{c['id']}/balances", headers=auth(b))).status_code == 404
    fin = bearer(await make_key("finance"))
    assert (await client.get(f"/api/v1/distributors/{c['id']}/balances", headers=fin)).status_code == 200
    risk = bearer(await make_key("risk_reviewer"))
    assert (await client.get(f"/api/v1/distributors/{c['id']}/balances", headers=risk)).status_code == 403
    assert (await client.get("/api/v1/distributors/999999/balances", headers=fin)).status_code == 404
    assert (
        await client.get(f"/api/v1/distributors/{c['id']}/balances?currency=ZZZ", headers=fin)
    ).status_code == 422


async def test_statement_running_balance_and_formats(client, admin_headers, chain):
    root, a, b, c = chain
    order = await place(client, c, "100.00")
    await place(client, c, "50.00")
    await refund(client, order, "40.00", auth(c))
    st = (await client.get(f"/api/v1/distributors/{c['id']}/statement", headers=auth(c))).json()
    assert [(i["kind"], i["account"], i["amount"], i["running_balance"]) for i in st["items"]] == [
        ("commission.accrued", "pending", "10.00", "10.00"),
        ("commission.accrued", "pending", "5.00", "15.00"),
        ("commission.reversed", "pending", "-4.00", "11.00"),
    ]
    assert st["opening_balance"] == "0.00" and st["closing_balance"] == "11.00"
    resp = await client.get(f"/api/v1/distributors/{c['id']}/statement?format=csv", headers=auth(c))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0][0] == "at" and rows[-1][-1] == "11.00" and len(rows) == 4
    resp = await client.get(f"/api/v1/distributors/{c['id']}/statement?format=xlsx", headers=auth(c))
    assert resp.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(resp.content)).namelist()  # a real xlsx (zip) file
    # a window: lines after "to" are left out, lines before "from" make the opening balance
    late = (
        await client.get(
            f"/api/v1/distributors/{c['id']}/statement?from=2999-01-01T00:00:00Z", headers=auth(c)
        )
    ).json()
    assert late["items"] == [] and late["opening_balance"] == "11.00"
    early = (
        await client.get(f"/api/v1/distributors/{c['id']}/statement?to=2000-01-01T00:00:00Z", headers=auth(c))
    ).json()
    assert early["items"] == []
    for bad in ("format=pdf", "from=yesterday", "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"):
        resp = await client.get(f"/api/v1/distributors/{c['id']}/statement?{bad}", headers=auth(c))
        assert resp.status_code in (400, 422), bad
    assert (await client.get(f"/api/v1/distributors/{c['id']}/statement", headers=auth(b))).status_code == 404


async def test_verify_names_what_is_wrong(client, admin_headers, chain, session, make_key):
    root, a, b, c = chain
    order = await place(client, c, "100.00")
    await verify_ok(client, admin_headers)
    assert (await client.get("/api/v1/ledger/verify", headers=auth(c))).status_code == 403
    assert (
        await client.get("/api/v1/ledger/verify", headers=bearer(await make_key("finance")))
    ).status_code == 200
    # corrupt things behind the services' back: each check names its violation
    await session.execute(
        text("UPDATE commission SET amount = amount + 1 WHERE order_id = :o AND level = 1"),
        {"o": order["id"]},
    )
    await session.execute(
        text(
            "UPDATE ledger_account SET balance = balance + 7 WHERE distributor_id = :d AND kind = 'available'"
        ),
        {"d": b["id"]},
    )
    await session.execute(
        text("UPDATE orders SET refunded_amount = amount WHERE id = :o"), {"o": order["id"]}
    )
    await session.commit()
    report = (await client.get("/api/v1/ledger/verify", headers=admin_headers)).json()
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert not report["ok"]
    assert {
        "commission_formula",
        "balances_equal_postings",
        "fully_refunded_orders_net_zero",
        "refunds_sum_to_refunded_amount",
        "reversal_follows_refunds",
    } <= failed
    assert "transactions_balance" not in failed
    bad = next(c for c in report["checks"] if c["name"] == "balances_equal_postings")
    assert bad["examples"][0]["distributor_id"] == b["id"]


def test_cli_verify(database_url, monkeypatch):
    from distnet.cli import app
    from distnet.settings import get_settings

    monkeypatch.setenv("DISTNET_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["ledger", "verify"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "ledger verified" in result.output and "transactions_balance" in result.output


async def test_commission_expense_is_not_a_hot_row(client, admin_headers, chain, sessionmaker):
    """Every order posts to the platform commission_expense account: its balance is applied at
    commit (deferred), so concurrent writers do not wait for each other's commit on that row, and
    committed balances still equal the sum of postings."""
    from distnet.ledger.service import Posting, post

    root, a, b, c = chain
    await place(client, c, "100.00")
    expense_sql = text(
        "SELECT balance FROM ledger_account WHERE distributor_id IS NULL AND kind = 'commission_expense'"
    )
    async with sessionmaker() as s:
        before = await s.scalar(expense_sql)
    async with sessionmaker() as first, sessionmaker() as second:
        await post(
            first, kind="test", postings=[Posting("commission_expense", -5), Posting("pending", 5, b["id"])]
        )
        # a second writer to the same platform account does not wait for the first to commit
        await second.execute(text("SET LOCAL lock_timeout = '2s'"))
        await post(
            second, kind="test", postings=[Posting("commission_expense", -3), Posting("pending", 3, a["id"])]
        )
        await second.commit()
        await first.commit()
    async with sessionmaker() as s:
        assert await s.scalar(expense_sql) == before - 8
        assert await s.scalar(text("SELECT count(*) FROM ledger_balance_pending")) == 0
    report = (await client.get("/api/v1/ledger/verify", headers=admin_headers)).json()
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    # the test postings are not commissions; everything about balances holds
    assert not failed & {"transactions_balance", "balances_equal_postings", "account_signs"}, failed


async def test_fact_tables_keep_their_references(client, admin_headers, chain, sessionmaker):
    """orders and commission have no foreign keys (migration 0005): their parents refuse DELETE,
    and ledger verify names any row whose reference is missing."""
    import pytest
    from sqlalchemy.exc import DBAPIError

    root, a, b, c = chain
    order = await place(client, c, "100.00")
    for table in (
        "distributor",
        "card",
        "commission_plan",
        "hold",
        "orders",
        "commission",
        "ledger_account",
        "ledger_transaction",
    ):
        async with sessionmaker() as s:
            with pytest.raises(DBAPIError, match="never deleted"):
                await s.execute(text(f"DELETE FROM {table} WHERE id = -1"))
    async with sessionmaker() as s:
        # a row written around the services, with references that do not exist
        await s.execute(
            text("UPDATE commission SET beneficiary_id = 999999 WHERE order_id = :o AND level = 3"),
            {"o": order["id"]},
        )
        await s.execute(
            text("UPDATE orders SET card_id = (SELECT id FROM card WHERE distributor_id = :b) WHERE id = :o"),
            {"b": b["id"], "o": order["id"]},
        )
        await s.commit()
    report = (await client.get("/api/v1/ledger/verify", headers=admin_headers)).json()
    check = next(ch for ch in report["checks"] if ch["name"] == "fact_references")
    assert not check["ok"]
    assert {(e["row"], e["id"]) for e in check["examples"]} == {
        ("order", order["id"]),
        ("commission", order["commissions"][2]["id"]),
    }


async def test_commission_credits_do_not_queue(client, admin_headers, chain, sessionmaker, settings):
    """Orders whose levels share beneficiaries: their pending credits are applied at commit
    (migration 0005), so the second order does not wait for the first one's commit, and the
    committed balances are the sums of both."""
    from distnet.kit.auth import SYSTEM
    from distnet.orders import service
    from distnet.orders.schemas import OrderCreate

    root, a, b, c = chain
    await place(client, root, "1.00")  # the plan and platform accounts exist, as in production
    async with sessionmaker() as first, sessionmaker() as second:
        await service.create_order(
            first,
            settings,
            SYSTEM,
            OrderCreate(external_id="by-c", card_number=c["card"]["number"], amount="100.00"),
        )  # c, b, a
        await second.execute(text("SET LOCAL lock_timeout = '2s'"))
        status, _ = await service.create_order(
            second,
            settings,
            SYSTEM,
            OrderCreate(external_id="by-b", card_number=b["card"]["number"], amount="100.00"),
        )  # b, a, root
        assert status == 201
        await second.commit()
        await first.commit()
    # b: 3% of c's order + 10% of its own; a: 1% + 3%; root: 10% of 1.00 + 1% of b's order
    assert [(await balances(client, d))["pending"] for d in (c, b, a, root)] == [
        "10.00",
        "13.00",
        "4.00",
        "1.10",
    ]
    async with sessionmaker() as s:
        assert await s.scalar(text("SELECT count(*) FROM ledger_balance_pending")) == 0
    await verify_ok(client, admin_headers)
