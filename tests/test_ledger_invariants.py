"""Invariant 1 at the database itself: whatever code writes postings, an unbalanced transaction is
refused, postings cannot be changed or deleted, and balances equal the sum of postings."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from distnet.ledger.service import Posting, UnbalancedTransaction, post
from tests.factories import register


async def _accounts(session, distributor_id):
    rows = await session.execute(
        text("SELECT kind, id FROM ledger_account WHERE distributor_id = :d"), {"d": distributor_id}
    )
    return dict(rows.all())


async def test_database_refuses_unbalanced_transactions(client, admin_headers, sessionmaker):
    root = await register(client, admin_headers, name="Root")
    async with sessionmaker() as s:
        acc = await _accounts(s, root["id"])
        txn = await s.scalar(text("INSERT INTO ledger_transaction (kind) VALUES ('test') RETURNING id"))
        with pytest.raises(DBAPIError, match="unbalanced"):
            await s.execute(
                text(
                    "INSERT INTO ledger_posting (transaction_id, account_id, amount) "
                    "VALUES (:t, :a, 100), (:t, :b, -99)"
                ),
                {"t": txn, "a": acc["pending"], "b": acc["available"]},
            )
        await s.rollback()
    async with sessionmaker() as s:
        with pytest.raises(UnbalancedTransaction):
            await post(
                s,
                kind="test",
                postings=[Posting("pending", 5, root["id"]), Posting("available", -4, root["id"])],
            )


async def test_postings_are_append_only_and_balances_follow(client, admin_headers, sessionmaker):
    root = await register(client, admin_headers, name="Root")
    async with sessionmaker() as s:
        await post(
            s,
            kind="test",
            postings=[
                Posting("pending", 700, root["id"]),
                Posting("available", -300, root["id"]),
                Posting("withheld", -400, root["id"]),
            ],
        )
        await post(
            s,
            kind="test",
            postings=[Posting("pending", -200, root["id"]), Posting("available", 200, root["id"])],
        )
        await s.commit()
        mismatched = await s.scalar(
            text("""
            SELECT count(*) FROM ledger_account a
             WHERE a.balance <> (SELECT coalesce(sum(p.amount), 0) FROM ledger_posting p WHERE p.account_id = a.id)
               AND a.distributor_id = :d"""),
            {"d": root["id"]},
        )
        assert mismatched == 0
        balances = dict(
            (
                await s.execute(
                    text("SELECT kind, balance FROM ledger_account WHERE distributor_id = :d"),
                    {"d": root["id"]},
                )
            ).all()
        )
        assert (balances["pending"], balances["available"], balances["withheld"]) == (500, -100, -400)
        for statement in ("UPDATE ledger_posting SET amount = amount + 1", "DELETE FROM ledger_posting"):
            with pytest.raises(DBAPIError, match="append-only"):
                await s.execute(text(statement))
            await s.rollback()


APPEND_ONLY = ("ledger_posting", "ledger_transaction", "ledger_account", "audit_log", "orders", "commission")


@pytest.mark.parametrize("table", APPEND_ONLY)
def test_truncate_is_refused_and_the_application_role_cannot_bypass_it(database_url, table):
    """A statement-level BEFORE TRUNCATE trigger refuses it (migration 0012); the bypass the test
    suite's reset uses (replication role "replica") needs a superuser: a role like production's
    application role (every privilege on the tables, not a superuser) can set neither."""
    import secrets

    import psycopg

    plain = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    role = f"distnet_app_test_{secrets.token_hex(4)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_log (actor, action, subject_type, subject_id) VALUES ('t', 'a', 's', '1')"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(f"TRUNCATE {table} CASCADE")
        conn.execute(f"CREATE ROLE {role} NOSUPERUSER")
        try:
            conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(f"TRUNCATE {table} CASCADE")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SET session_replication_role = replica")
        finally:
            conn.execute("RESET ROLE")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 1
