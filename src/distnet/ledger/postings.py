"""The one builder of set-based posting statements: every writer that posts a whole set at once
(attribution, settlement, payouts, points, ``ledger.service.post``) writes its ledger
transaction and postings with the CTEs :func:`posting_ctes` returns, and checks them with
:func:`posted_columns` and :func:`check_posted`.

The writer defines a CTE of lines (default name ``lines``), one row per posting:

    owner          the distributor, NULL for a platform account (not with ``Match.account_id``)
    kind           the account kind
    currency       unless ``currency`` names a constant (points: ``'PTS'``)
    amount         minor units, signed
    commission_id  only with ``commission_ids=True``
    txn            the transaction kind of the line, only with ``kind=None`` (one transaction per kind)
    account_id     instead of owner, kind and currency, with ``Match.account_id``

and puts ``posting_ctes(...)`` after it: ``txn`` (the ``ledger_transaction`` row(s)) and ``posted``
(the ``ledger_posting`` rows, ``RETURNING 1``). The database guarantees the rest: the statement
trigger refuses a transaction whose postings do not sum to zero and applies the balances
(migrations 0002, 0005, 0110); ``ledger_posting`` is append-only. What SQL cannot refuse is a line
that found no account (the join drops it, and the remaining postings may still balance): the
writer selects :func:`posted_columns` and calls :func:`check_posted`, which refuses the unit of
work when fewer postings than lines were written.
"""

from __future__ import annotations

from enum import StrEnum


class Match(StrEnum):
    """How a line finds its account."""

    owner_or_platform = "owner_or_platform"
    """``coalesce(distributor_id, 0) = coalesce(owner, 0)``: members' and platform lines alike."""
    owner = "owner"
    """``distributor_id = owner``: members' lines only (a platform line finds nothing)."""
    separate = "separate"
    """Members' lines by ``distributor_id = owner``, platform lines by ``distributor_id IS NULL``,
    as two joins (UNION ALL): the OR of both made the planner probe the lines once per account
    (quadratic: minutes for a points grant at 1M members)."""
    account_id = "account_id"
    """The lines carry ``account_id`` (accounts the writer has locked and read already)."""


class PostingsMissing(RuntimeError):
    """A line found no account: fewer postings were written than the statement computed."""


def posting_ctes(
    *,
    kind: str | None,
    ref_type: str,
    ref_id: str,
    memo: str = "NULL",
    when: str | None = None,
    lines: str = "lines",
    match: Match = Match.owner_or_platform,
    accounts: str = "ledger_account",
    currency: str = "l.currency",
    commission_ids: bool = False,
    skip_zero: bool = False,
    in_account_order: bool = False,
    prefix: str = "",
) -> str:
    """The ``txn`` and ``posted`` CTEs (text to follow ``, `` after the lines CTE), named
    ``{prefix}txn`` and ``{prefix}posted``: a statement that writes two ledger transactions (an
    order's commissions and its points) gives the second a prefix.

    ``kind``, ``ref_type``, ``ref_id``, ``memo`` and ``when`` are SQL expressions. One transaction
    of ``kind``, written only when ``when`` holds (e.g. ``EXISTS (SELECT 1 FROM lines)``), or with
    ``kind=None`` one transaction per distinct ``txn`` of the lines. ``accounts`` is the relation
    the accounts are read from (a writer that locked its accounts into a CTE passes that CTE:
    it has ``id, distributor_id, kind, currency``). ``skip_zero`` drops zero-amount lines;
    ``in_account_order`` inserts the postings by account id (the lock order of a writer whose
    trigger-time balance updates must follow it)."""
    if kind is None:
        txn = (
            f"INSERT INTO ledger_transaction (kind, ref_type, ref_id, memo)\n"
            f"    SELECT k.kind, {ref_type}, {ref_id}, {memo} FROM (SELECT DISTINCT txn AS kind FROM {lines}) k\n"
            f"    RETURNING id, kind"
        )
        joined = f"JOIN {prefix}txn txn ON txn.kind = l.txn"
    else:
        txn = (
            f"INSERT INTO ledger_transaction (kind, ref_type, ref_id, memo)\n"
            f"    SELECT {kind}, {ref_type}, {ref_id}, {memo}" + (f" WHERE {when}" if when else "") + "\n"
            "    RETURNING id"
        )
        joined = f"CROSS JOIN {prefix}txn txn"
    columns = "transaction_id, account_id, amount" + (", commission_id" if commission_ids else "")
    values = "txn.id, {account}, l.amount" + (", l.commission_id" if commission_ids else "")
    nonzero = "l.amount <> 0"
    if match is Match.account_id:
        selects = [
            _select(
                values.format(account="l.account_id"),
                lines,
                joined,
                "",
                ["l.account_id IS NOT NULL"] + ([nonzero] if skip_zero else []),
            )
        ]
    else:
        same = f"a.kind = l.kind AND a.currency = {currency}"
        on = {
            Match.owner_or_platform: [f"coalesce(a.distributor_id, 0) = coalesce(l.owner, 0) AND {same}"],
            Match.owner: [f"a.distributor_id = l.owner AND {same}"],
            Match.separate: [
                f"a.distributor_id = l.owner AND {same}",
                f"a.distributor_id IS NULL AND {same}",
            ],
        }[match]
        selects = [
            _select(
                values.format(account="a.id"),
                lines,
                joined,
                f"JOIN {accounts} a ON {cond}",
                (["l.owner IS NULL"] if i == 1 else []) + ([nonzero] if skip_zero else []),
            )
            for i, cond in enumerate(on)
        ]
    body = "\n    UNION ALL\n".join(selects)
    if in_account_order:
        body += "\n     ORDER BY a.id"
    return (
        f"{prefix}txn AS (\n    {txn}\n), {prefix}posted AS (\n"
        f"    INSERT INTO ledger_posting ({columns})\n{body}\n    RETURNING 1\n)"
    )


def _select(values: str, lines: str, joined: str, account_join: str, where: list[str]) -> str:
    sql = f"    SELECT {values}\n      FROM {lines} l {joined}"
    if account_join:
        sql += f"\n      {account_join}"
    if where:
        sql += "\n     WHERE " + " AND ".join(where)
    return sql


def posted_columns(
    *, lines: str = "lines", skip_zero: bool = False, prefix: str = "", names: str = ""
) -> str:
    """Result columns ``{names}lines`` (postings computed) and ``{names}posted`` (postings written)
    of :func:`posting_ctes` with ``prefix``."""
    counted = f"(SELECT count(*) FROM {lines}" + (" WHERE amount <> 0" if skip_zero else "") + ")"
    return f"{counted} AS {names}lines, (SELECT count(*) FROM {prefix}posted) AS {names}posted"


def check_posted(what: str, lines: int, posted: int) -> None:
    """Refuse the unit of work when a line found no account."""
    if posted != lines:
        raise PostingsMissing(f"{what} wrote {posted} of {lines} postings: refusing to continue")
