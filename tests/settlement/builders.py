"""Money fixtures by direct SQL + ledger.service.post (the orders/commissions domain builds the real
flows in parallel): distributors with accounts and cards, orders with one commission each and its
accrual posting, refund reversals, clawback debt and holds. Ids come from sequences, so after the
per-test TRUNCATE ... RESTART IDENTITY the same calls build the same world."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.crypto import encrypt
from distnet.ledger.service import Posting, ensure_accounts, ensure_platform_accounts, post

SECRET = b"test-secret-key"  # the test settings' secret_key
PAST = datetime(2026, 1, 1, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)


async def add_distributors(
    session: AsyncSession, n: int, *, bank: bool = True, currency: str = "CNY"
) -> list[int]:
    ids = list(
        await session.scalars(
            text("SELECT nextval(pg_get_serial_sequence('distributor', 'id')) FROM generate_series(1, :n)"),
            {"n": n},
        )
    )
    await session.execute(
        text(
            """
            INSERT INTO distributor (id, code, name, depth, path)
            SELECT i, 'T' || lpad(i::text, 7, '0'), 'Distributor ' || i, 0, text2ltree(i::text)
              FROM unnest(CAST(:ids AS bigint[])) AS t(i)
            """
        ),
        {"ids": ids},
    )
    if bank:
        await add_payout_accounts(session, ids)
    await session.execute(
        text(
            "INSERT INTO card (number, distributor_id) SELECT '62' || lpad(i::text, 14, '0'), i "
            "FROM unnest(CAST(:ids AS bigint[])) i"
        ),
        {"ids": ids},
    )
    await ensure_accounts(session, distributor_ids=ids, currency=currency)
    await ensure_platform_accounts(session, currency=currency)
    return ids


async def add_payout_accounts(
    session: AsyncSession, ids: list[int], *, cooling_until: datetime = PAST
) -> None:
    """A confirmed bank card payout account per distributor, out of cooling-off unless told."""
    await session.execute(
        text(
            """
            INSERT INTO payout_account (distributor_id, method, holder_name_enc, account_number_enc, account_last4,
                                        bank_name, resident_id_enc, resident_id_last4, status, cooling_until)
            SELECT i, 'bank_card', n, a, right(i::text, 4), '中国工商银行', r, '0011', 'active', :cooling
              FROM unnest(CAST(:ids AS bigint[]), CAST(:names AS bytea[]), CAST(:accounts AS bytea[]),
                          CAST(:residents AS bytea[])) AS t(i, n, a, r)
            """
        ),
        {
            "ids": ids,
            "cooling": cooling_until,
            "names": [encrypt(SECRET, f"持卡人{i}") for i in ids],
            "accounts": [encrypt(SECRET, f"6222 0000 {i:08d}") for i in ids],
            "residents": [encrypt(SECRET, "110101199003070011") for _ in ids],
        },
    )
    await session.execute(
        text(
            "INSERT INTO tax_identity (distributor_id, name_enc, resident_id_enc) "
            "SELECT distributor_id, holder_name_enc, resident_id_enc FROM payout_account "
            "WHERE distributor_id = ANY(:ids) AND superseded_at IS NULL ON CONFLICT DO NOTHING"
        ),
        {"ids": ids},
    )


async def _plan_id(session: AsyncSession) -> int:
    plan = await session.scalar(text("SELECT id FROM commission_plan ORDER BY id LIMIT 1"))
    if plan is None:
        plan = await session.scalar(
            text(
                "INSERT INTO commission_plan (version, name, max_levels, hold_days, min_order_amount, effective_from) "
                "VALUES (1, 'test plan', 3, 15, 0, '2020-01-01') RETURNING id"
            )
        )
    return plan


async def add_commissions(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Each row: beneficiary_id, amount, hold_until (default: 20 days ago), reversed=0,
    currency='CNY'. One order per commission (level 1); accrual posted as one ledger transaction:
    expense -a, D.pending +a; a reversal r on pending: D.pending -r, expense +r."""
    if not rows:
        return []
    plan = await _plan_id(session)
    ids = list(
        await session.scalars(
            text(
                """
            WITH o AS (
                INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at,
                                    refunded_amount)
                SELECT 'test', 'o-' || nextval(pg_get_serial_sequence('orders', 'id')) || '-' || t.n, '\\x00',
                       (SELECT id FROM card WHERE distributor_id = t.d AND cancelled_at IS NULL), t.d,
                       t.amount * 10, t.currency, now(), t.reversed * 10
                  FROM unnest(CAST(:ds AS bigint[]), CAST(:amounts AS bigint[]), CAST(:reversed AS bigint[]),
                              CAST(:currencies AS text[])) WITH ORDINALITY AS t(d, amount, reversed, currency, n)
                RETURNING id, seller_id, amount, refunded_amount, external_id
            )
            INSERT INTO commission (order_id, level, beneficiary_id, plan_id, rank_used, rate_bps, base, amount,
                                    reversed, status, hold_until)
            SELECT o.id, 1, o.seller_id, :plan, 'member', 1000, o.amount, o.amount / 10, o.refunded_amount / 10,
                   'pending', t.hold_until
              FROM o JOIN unnest(CAST(:hold AS timestamptz[])) WITH ORDINALITY AS t(hold_until, n)
                ON t.n = CAST(split_part(o.external_id, '-', 3) AS bigint)
            ORDER BY t.n
            RETURNING id
            """
            ),
            {
                "ds": [r["beneficiary_id"] for r in rows],
                "amounts": [r["amount"] for r in rows],
                "reversed": [r.get("reversed", 0) for r in rows],
                "currencies": [r.get("currency", "CNY") for r in rows],
                "hold": [r.get("hold_until", days_ago(20)) for r in rows],
                "plan": plan,
            },
        )
    )
    ids.sort()
    by_currency: dict[str, list[Posting]] = {}
    for cid, r in zip(ids, rows, strict=True):
        cur = r.get("currency", "CNY")
        lines = by_currency.setdefault(cur, [])
        lines += [
            Posting("commission_expense", -r["amount"]),
            Posting("pending", r["amount"], r["beneficiary_id"], cid),
        ]
        if r.get("reversed"):
            lines += [
                Posting("pending", -r["reversed"], r["beneficiary_id"], cid),
                Posting("commission_expense", r["reversed"]),
            ]
    for cur, lines in by_currency.items():
        await post(session, kind="commission_accrued", postings=lines, currency=cur)
    return ids


async def add_debt(session: AsyncSession, distributor_id: int, amount: int) -> None:
    """A clawback after payout: D.owed -r, expense +r (what the orders domain writes)."""
    await post(
        session,
        kind="commission_reversal",
        postings=[Posting("owed", -amount, distributor_id), Posting("commission_expense", amount)],
    )


async def add_available(
    session: AsyncSession, distributor_id: int, amount: int, *, available_at: datetime | None = None
) -> int:
    """A commission that is already available (as if settled earlier)."""
    [cid] = await add_commissions(session, [{"beneficiary_id": distributor_id, "amount": amount}])
    await post(
        session,
        kind="settlement",
        postings=[Posting("pending", -amount, distributor_id), Posting("available", amount, distributor_id)],
    )
    await session.execute(
        text("UPDATE commission SET status = 'available', available_at = :at WHERE id = :id"),
        {"id": cid, "at": available_at or days_ago(1)},
    )
    return cid


async def add_hold(
    session: AsyncSession,
    distributor_id: int,
    reason: str = "order_brushing",
    *,
    ends_at: datetime | None = None,
    started_at: datetime | None = None,
) -> int:
    return await session.scalar(
        text(
            """
            INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key, started_at, ends_at,
                              appealable)
            SELECT :d, id, CAST(:reason AS text), 'actor', 'test-' || CAST(:reason AS text) || '-' || clock_timestamp(),
                   coalesce(CAST(:started AS timestamptz), now()), CAST(:ends AS timestamptz),
                   CAST(:reason AS text) <> 'maintenance'
              FROM card WHERE distributor_id = :d AND cancelled_at IS NULL
            RETURNING id
            """
        ),
        {"d": distributor_id, "reason": reason, "ends": ends_at, "started": started_at},
    )


async def balances(session: AsyncSession) -> dict[tuple[int | None, str, str], int]:
    rows = await session.execute(text("SELECT distributor_id, kind, currency, balance FROM ledger_account"))
    return {(r.distributor_id, r.kind, r.currency): r.balance for r in rows}


async def ledger_snapshot(session: AsyncSession) -> dict[str, Any]:
    """What "the same ledger" means: balances per account, the sum of postings per account,
    commission statuses, and the totals per ledger transaction kind."""
    accounts = await balances(session)
    sums = dict(
        (tuple(r[:3]), r[3])
        for r in await session.execute(
            text(
                "SELECT a.distributor_id, a.kind, a.currency, coalesce(sum(p.amount), 0) FROM ledger_account a "
                "LEFT JOIN ledger_posting p ON p.account_id = a.id GROUP BY 1, 2, 3"
            )
        )
    )
    commissions = {
        r.id: (r.status, r.available_at is not None, r.withheld_hold_id)
        for r in await session.execute(
            text("SELECT id, status, available_at, withheld_hold_id FROM commission")
        )
    }
    kinds = {
        r.kind: (r.n_postings, r.total_abs)
        for r in await session.execute(
            text(
                "SELECT t.kind, count(p.id) AS n_postings, sum(abs(p.amount)) AS total_abs FROM ledger_transaction t "
                "JOIN ledger_posting p ON p.transaction_id = t.id GROUP BY t.kind"
            )
        )
    }
    unbalanced = await session.scalar(
        text(
            "SELECT count(*) FROM (SELECT transaction_id FROM ledger_posting GROUP BY 1 HAVING sum(amount) <> 0) s"
        )
    )
    return {
        "accounts": accounts,
        "posting_sums": sums,
        "commissions": commissions,
        "kinds": kinds,
        "unbalanced": unbalanced,
    }
