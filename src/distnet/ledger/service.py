"""Double-entry ledger core. Every money movement is one call to :func:`post` (or a set-based
statement that inserts a whole transaction's postings at once): the database trigger refuses
unbalanced transactions and keeps ``ledger_account.balance`` equal to the sum of postings. The
platform ``commission_expense`` balance (posted to by every order) is applied at COMMIT by a
deferred trigger (migration 0002), so inside an uncommitted transaction that posted to it the
stored value lags; never lock that row explicitly (committing writers wait for it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import pg
from distnet.ledger import repository as repo
from distnet.ledger.postings import PostingsMissing, check_posted, posted_columns, posting_ctes
from distnet.models import LedgerAccount

DISTRIBUTOR_ACCOUNTS = ("pending", "available", "withheld", "reserved", "paid", "owed")
POINTS_ACCOUNTS = ("points", "points_owed")
"""Per member, currency PTS (issue 18); the platform's are points_issued, points_redeemed, points_expired."""
PLATFORM_ACCOUNTS = (
    "commission_expense",
    "payout_clearing",
    "forfeited_income",
    "repayment_clearing",
    "tax_payable",
)


class UnbalancedTransaction(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Posting:
    kind: str
    """Account kind; distributor accounts need ``distributor_id``, platform accounts must not have one."""
    amount: int
    distributor_id: int | None = None
    commission_id: int | None = None


async def ensure_accounts(
    session: AsyncSession, *, distributor_ids: Sequence[int], currency: str = "CNY"
) -> None:
    """Open the six per-distributor accounts and the two points accounts (currency ``PTS``:
    ``points``, ``points_owed``) (idempotent, set-based)."""
    if not distributor_ids:
        return
    await session.execute(
        repo.OPEN_DISTRIBUTOR_ACCOUNTS,
        {
            "ids": list(distributor_ids),
            "kinds": list(DISTRIBUTOR_ACCOUNTS),
            "currency": currency,
            "points": list(POINTS_ACCOUNTS),
        },
    )


async def ensure_platform_accounts(session: AsyncSession, *, currency: str = "CNY") -> None:
    # through kit.pg: every order batch and import runs it
    await pg.fetch(
        session, repo.OPEN_PLATFORM_ACCOUNTS, {"kinds": list(PLATFORM_ACCOUNTS), "currency": currency}
    )


async def apply_deferred_balances(session: AsyncSession) -> None:
    """Apply this transaction's queued balance deltas now instead of at commit (migration 0005:
    credits to pending / withheld and the platform expense are applied at commit). For a reader
    that must see its own transaction's credits in the stored balances; committed balances never
    need it."""
    await session.execute(repo.APPLY_DEFERRED_NOW)
    await session.execute(repo.DEFER_APPLY)


async def post(
    session: AsyncSession,
    *,
    kind: str,
    postings: Sequence[Posting],
    ref_type: str | None = None,
    ref_id: object = None,
    memo: str | None = None,
    currency: str = "CNY",
) -> int:
    """Write one balanced transaction; returns its id. Zero-amount postings are dropped."""
    lines = [p for p in postings if p.amount != 0]
    if sum(p.amount for p in lines) != 0:
        raise UnbalancedTransaction(f"{kind}: postings sum to {sum(p.amount for p in lines)}")
    if any(p.distributor_id is None for p in lines) and currency != "PTS":  # points: benefits.repository
        await ensure_platform_accounts(session, currency=currency)
    # one statement for the transaction and all its postings: the balance trigger checks the whole
    # transaction at once
    row = (
        await session.execute(
            _POST,
            {
                "kind": kind,
                "ref_type": ref_type,
                "ref_id": None if ref_id is None else str(ref_id),
                "memo": memo,
                "owners": [p.distributor_id for p in lines],
                "kinds": [p.kind for p in lines],
                "amounts": [p.amount for p in lines],
                "commissions": [p.commission_id for p in lines],
                "currency": currency,
            },
        )
    ).one()
    try:
        check_posted(kind, row.lines, row.posted)
    except PostingsMissing as exc:
        raise UnbalancedTransaction(f"{kind}: an account is missing ({exc})") from None
    return int(row.transaction_id)


_POST = text(
    """
    WITH lines AS (
        SELECT * FROM unnest(CAST(:owners AS bigint[]), CAST(:kinds AS text[]), CAST(:amounts AS bigint[]),
                             CAST(:commissions AS bigint[])) AS l(owner, kind, amount, commission_id)
    ), """
    + posting_ctes(
        kind="CAST(:kind AS text)",
        ref_type="CAST(:ref_type AS text)",
        ref_id="CAST(:ref_id AS text)",
        memo="CAST(:memo AS text)",
        currency="CAST(:currency AS text)",
        commission_ids=True,
    )
    + """
    SELECT (SELECT id FROM txn) AS transaction_id, """
    + posted_columns()
)


async def balances(session: AsyncSession, *, distributor_id: int, currency: str = "CNY") -> dict[str, int]:
    rows = await session.execute(
        select(LedgerAccount.kind, LedgerAccount.balance).where(
            LedgerAccount.distributor_id == distributor_id, LedgerAccount.currency == currency
        )
    )
    found = dict(rows.all())
    return {kind: found.get(kind, 0) for kind in DISTRIBUTOR_ACCOUNTS}
