"""The posting builder (ledger.postings) against the database: each way a line finds its account
writes the postings and balances of its lines; a line without an account is refused by
``check_posted``, unbalanced lines by the ledger trigger; one transaction per line kind."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from distnet.kit.outbox import insert_events
from distnet.ledger.postings import Match, PostingsMissing, check_posted, posted_columns, posting_ctes
from distnet.ledger.service import Posting, UnbalancedTransaction, ensure_platform_accounts, post
from tests.factories import register


def _statement(lines: str, **options) -> str:
    return (
        f"WITH lines AS ({lines}), "
        + posting_ctes(ref_type="'test'", ref_id="CAST(:ref AS text)", **options)
        + " SELECT "
        + posted_columns(skip_zero=options.get("skip_zero", False))
        + ", (SELECT array_agg(id ORDER BY id) FROM txn) AS txns"
    )


async def _balances(s, d: int) -> dict[str, int]:
    rows = await s.execute(
        text("SELECT kind, balance FROM ledger_account WHERE distributor_id = :d AND currency = 'CNY'"),
        {"d": d},
    )
    return dict(rows.all())


@pytest.mark.parametrize("match", [Match.owner_or_platform, Match.separate])
async def test_members_and_platform_lines(client, admin_headers, sessionmaker, match):
    d = (await register(client, admin_headers))["id"]
    async with sessionmaker() as s:
        await ensure_platform_accounts(s)
        sql = _statement(
            f"SELECT {d}::bigint AS owner, 'available' AS kind, 'CNY' AS currency, 700::bigint AS amount "
            "UNION ALL SELECT NULL, 'payout_clearing', 'CNY', -700 "
            f"UNION ALL SELECT {d}, 'owed', 'CNY', 0",
            kind="'test.builder'",
            match=match,
            skip_zero=True,
        )
        row = (await s.execute(text(sql), {"ref": "1"})).one()
        check_posted("test", row.lines, row.posted)
        assert (row.lines, row.posted, len(row.txns)) == (2, 2, 1)
        assert (await _balances(s, d))["available"] == 700
        assert (
            await s.scalar(text("SELECT kind FROM ledger_transaction WHERE id = :t"), {"t": row.txns[0]})
            == "test.builder"
        )


async def test_owner_match_and_a_line_without_account(client, admin_headers, sessionmaker):
    d = (await register(client, admin_headers))["id"]
    async with sessionmaker() as s:
        await ensure_platform_accounts(s)
        # Match.owner finds members' accounts only: the platform line is left out, and the check
        # refuses what the trigger could not see (the postings written still balance: none)
        sql = _statement(
            f"SELECT {d}::bigint AS owner, 'available' AS kind, 'CNY' AS currency, 5::bigint AS amount "
            "UNION ALL SELECT NULL, 'payout_clearing', 'CNY', -5",
            kind="'test'",
            match=Match.owner,
        )
        with pytest.raises(DBAPIError, match="unbalanced"):
            await s.execute(text(sql), {"ref": "2"})
        await s.rollback()
        sql = _statement(
            f"SELECT {d}::bigint AS owner, 'no_such_kind' AS kind, 'CNY' AS currency, 5::bigint AS amount",
            kind="'test'",
            match=Match.owner,
        )
        row = (await s.execute(text(sql), {"ref": "3"})).one()
        with pytest.raises(PostingsMissing, match="wrote 0 of 1 postings"):
            check_posted("test", row.lines, row.posted)
        await s.rollback()
        with pytest.raises(UnbalancedTransaction, match="account is missing"):
            await post(s, kind="test", postings=[Posting("no_such_kind", 5, d), Posting("nor_this", -5, d)])


async def test_account_ids_and_one_transaction_per_kind(client, admin_headers, sessionmaker):
    d = (await register(client, admin_headers))["id"]
    async with sessionmaker() as s:
        ids = dict(
            (
                await s.execute(
                    text(
                        "SELECT kind, id FROM ledger_account WHERE distributor_id = :d AND currency = 'CNY'"
                    ),
                    {"d": d},
                )
            ).all()
        )
        sql = _statement(
            f"SELECT 'a' AS txn, {ids['available']}::bigint AS account_id, 3::bigint AS amount "
            f"UNION ALL SELECT 'a', {ids['owed']}, -3 "
            f"UNION ALL SELECT 'b', {ids['owed']}, -2 UNION ALL SELECT 'b', {ids['available']}, 2",
            kind=None,
            match=Match.account_id,
        )
        row = (await s.execute(text(sql), {"ref": "4"})).one()
        check_posted("test", row.lines, row.posted)
        assert (row.lines, row.posted, len(row.txns)) == (4, 4, 2)
        kinds = (
            await s.scalars(
                text("SELECT kind FROM ledger_transaction WHERE id = ANY(:t) ORDER BY kind"), {"t": row.txns}
            )
        ).all()
        assert kinds == ["a", "b"]
        assert {k: v for k, v in (await _balances(s, d)).items() if v} == {"available": 5, "owed": -5}
        await s.rollback()


def test_outbox_insert_takes_a_topic_name_or_an_expression():
    sql = insert_events(
        topic="order.created",
        source="o",
        distributor_id="o.seller_id",
        payload="'{}'::jsonb",
        where="o.amount > 0",
        order_by="o.id",
        returning=True,
    )
    assert "'order.created'" in sql and sql.endswith("RETURNING 1") and "ORDER BY o.id" in sql
    assert "'payout.' || status" in insert_events(
        topic_sql="'payout.' || status", source="upd", distributor_id="d", payload="p"
    )
    for bad in ({"topic": "x'; DROP TABLE orders; --"}, {}, {"topic": "a.b", "topic_sql": "t"}):
        with pytest.raises(ValueError):
            insert_events(source="o", distributor_id="d", payload="p", **bad)


async def test_deferred_credits_queue_one_apply_per_statement(client, admin_headers, sessionmaker):
    """Credits to members' pending accounts and postings to commission_expense are queued and
    applied at commit. Only the first row each posting statement queues (its ``head``) queues the
    deferred apply (migration 0170): two statements of three and two queued rows make two heads,
    and at commit the first apply takes every row of the transaction, the second finds nothing."""
    members = [(await register(client, admin_headers))["id"] for _ in range(3)]
    async with sessionmaker() as s:
        await ensure_platform_accounts(s)
        await s.commit()
    async with sessionmaker() as s:
        queued: list[list[tuple[int, bool]]] = []
        for chunk, amount in ((members, 100), (members[:1], 50)):
            await post(
                s,
                kind="test.accrual",
                postings=[
                    *(Posting("pending", amount, d) for d in chunk),
                    Posting("commission_expense", -amount * len(chunk)),
                ],
            )
            seen = {i for statement in queued for i, _ in statement}
            rows = (await s.execute(text("SELECT id, head FROM ledger_balance_pending ORDER BY id"))).all()
            queued.append([(r.id, r.head) for r in rows if r.id not in seen])
        assert [len(statement) for statement in queued] == [4, 2]
        # one head per statement: its first queued row
        assert [[head for _, head in statement] for statement in queued] == [
            [True, False, False, False],
            [True, False],
        ]
        assert (await _balances(s, members[0]))["pending"] == 0  # not before commit
        await s.commit()
    async with sessionmaker() as s:
        assert await s.scalar(text("SELECT count(*) FROM ledger_balance_pending")) == 0
        assert [(await _balances(s, d))["pending"] for d in members] == [150, 100, 100]
        expense = await s.scalar(
            text(
                "SELECT balance FROM ledger_account WHERE distributor_id IS NULL AND kind = 'commission_expense' "
                "AND currency = 'CNY'"
            )
        )
        assert expense == -350


async def test_opening_platform_accounts_does_not_wait_for_a_batch_in_flight(sessionmaker):
    """Every order batch opens the platform accounts first. Another batch in flight has updated
    their balances (the commit-time apply) and not committed yet: the opening must not wait for it
    (it made each batch wait for the ones in flight before doing any work), and still opens a
    missing currency's accounts."""
    async with sessionmaker() as s:
        await ensure_platform_accounts(s)
        await s.commit()
    async with sessionmaker() as in_flight, sessionmaker() as s:
        changed = await in_flight.execute(
            text(
                "UPDATE ledger_account SET balance = balance WHERE distributor_id IS NULL AND currency = 'CNY'"
            )
        )
        assert changed.rowcount > 0
        await s.execute(text("SET LOCAL lock_timeout = '1s'"))
        await ensure_platform_accounts(s)  # raised LockNotAvailable after 1 s before the fix
        await ensure_platform_accounts(s, currency="USD")
        opened = await s.execute(
            text(
                "SELECT currency, count(*) FROM ledger_account WHERE distributor_id IS NULL GROUP BY 1 ORDER BY 1"
            )
        )
        counts = dict(opened.all())
        assert counts["USD"] == counts["CNY"] > 0
        await in_flight.rollback()
        await s.commit()


async def test_one_statement_of_queued_and_immediate_postings(client, admin_headers, sessionmaker):
    """One posting statement with credits that queue (pending, commission_expense) and postings that
    apply at once (available, payout_clearing): the immediate ones show in the balances before the
    commit, the queued ones at the commit, and the queue holds only the queued accounts (migration
    0180 computes each account's sum and whether it queues once for the three steps)."""
    a, b = [(await register(client, admin_headers))["id"] for _ in range(2)]
    async with sessionmaker() as s:
        await ensure_platform_accounts(s)
        await s.commit()
    async with sessionmaker() as s:
        await post(
            s,
            kind="test.mixed",
            postings=[
                Posting("pending", 300, a),
                Posting("pending", 200, b),
                Posting("commission_expense", -500),
                Posting("available", 70, a),
                Posting("available", 30, a),  # two lines of one account: one sum
                Posting("payout_clearing", -100),
            ],
        )
        queued = (
            await s.execute(
                text(
                    "SELECT a.distributor_id, a.kind, q.amount FROM ledger_balance_pending q "
                    "JOIN ledger_account a ON a.id = q.account_id ORDER BY q.id"
                )
            )
        ).all()
        assert sorted((d or 0, k, amt) for d, k, amt in queued) == sorted(
            [(a, "pending", 300), (b, "pending", 200), (0, "commission_expense", -500)]
        )
        before = await _balances(s, a)
        assert (before["available"], before["pending"]) == (100, 0)
        await s.commit()
    async with sessionmaker() as s:
        assert (await _balances(s, a))["pending"] == 300 and (await _balances(s, b))["pending"] == 200
        assert await s.scalar(text("SELECT count(*) FROM ledger_balance_pending")) == 0
