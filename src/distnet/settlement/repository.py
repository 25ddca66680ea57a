"""All SQL of settlement. Each partition moves its commissions with set-based statements; the
postings of a partition are written by ONE INSERT ... SELECT so that the ledger trigger checks
every transaction's balance at once (see ARCHITECTURE.md, ledger postings table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.outbox import insert_events, statement
from distnet.kit.pg import bulk_settings
from distnet.ledger.postings import Match, check_posted, posted_columns, posting_ctes

# A partition's statements sort and hash its due commissions (tens of thousands to a few hundred
# thousand rows); at the server default work_mem those hashes spill into batches, and a batched
# hash join no longer returns rows in the order they came in, which undoes the physical-order
# processing of SETTLE_PARTITION. And a worker runs the same statements for partition after
# partition on one connection: custom plans only (a generic plan's nested loop over the arrays
# made a partition 5-6 times slower at L; kit.pg.bulk_settings). Transaction-local.
PARTITION_SETTINGS = bulk_settings("64MB")

# Phase 1 of a partition: lock, in id order, exactly the ledger accounts the partition will post
# to (the ledger trigger locks in id order too, and so do payout-run creation and refund reversals,
# so none of them deadlock with us): per beneficiary with due pending commissions in the range its
# ``pending`` account, ``withheld`` if it is under a violation hold, otherwise ``available``, and
# ``owed`` when it is in debt. A refund reversal locks all of a beneficiary's accounts before its
# commission rows, so once we hold the ``pending`` account no reversal of that beneficiary's
# commissions is in flight, and phase 2 updates the commission rows without a separate lock pass.
# FOR NO KEY UPDATE (the mode the ledger trigger uses: FOR UPDATE would deadlock against the
# posting foreign-key checks) returns the newest version of each row: the ``owed`` balances read here are the ones
# netting uses (nobody can change them until we commit; a debt repaid meanwhile drops out).
# Accounts are found by the partition's distributor id range (``ix_ledger_account_distributor``);
# a join on ``distributor_id`` alone cannot use an index range and read every account per partition.
LOCK_ACCOUNTS = text(
    """
    WITH ben AS (
        SELECT DISTINCT c.beneficiary_id AS d FROM commission c
         WHERE c.status = 'pending' AND c.hold_until <= :as_of AND c.beneficiary_id BETWEEN :lo AND :hi
    ), held AS (
        SELECT DISTINCT h.distributor_id AS d FROM hold h
         WHERE h.distributor_id BETWEEN :lo AND :hi AND h.reason <> 'maintenance'
           AND h.lifted_at IS NULL AND h.started_at <= now() AND (h.ends_at IS NULL OR h.ends_at > now())
    ), locked AS (
        SELECT a.id, a.distributor_id AS d, a.kind, a.currency, a.balance, held.d IS NOT NULL AS held
          FROM ben
          JOIN ledger_account a ON a.distributor_id = ben.d
          LEFT JOIN held ON held.d = ben.d
         WHERE a.distributor_id BETWEEN :lo AND :hi
           AND (a.kind = 'pending'
            OR (a.kind = 'available' AND held.d IS NULL)
            OR (a.kind = 'withheld' AND held.d IS NOT NULL)
            OR (a.kind = 'owed' AND a.balance < 0))
         ORDER BY a.id
           FOR NO KEY UPDATE OF a
    ), bens AS (
        SELECT DISTINCT d, held FROM locked
    )
    SELECT (SELECT coalesce(array_agg(d ORDER BY d), '{}') FROM bens) AS ids,
           (SELECT coalesce(array_agg(held ORDER BY d), '{}') FROM bens) AS held,
           coalesce(array_agg(id ORDER BY id), '{}') AS account_ids,
           coalesce(array_agg(d ORDER BY id), '{}') AS account_ds,
           coalesce(array_agg(kind ORDER BY id), '{}') AS account_kinds,
           coalesce(array_agg(currency ORDER BY id), '{}') AS account_currencies,
           coalesce(array_agg(balance ORDER BY id), '{}') AS account_balances
      FROM locked
    """
)

# Phase 2, one statement per partition (its snapshot is taken after phase 1, so a reversal that
# held the accounts before us is visible, and rows moved by a run that held them before us are no
# longer 'pending'). Only beneficiaries locked in phase 1 are touched, and only when their hold
# state is still the one phase 1 locked for (a hold placed or lifted in between leaves that
# beneficiary's commissions pending for the next run). The UPDATE's own row locks are the only
# locks on commission rows; its RETURNING feeds the per-beneficiary sums:
#   held beneficiary (active violation hold)  -> withheld:  D.pending -w, D.withheld +w
#   otherwise, net > 0                       -> available: D.pending -x, D.owed +n, D.available +(x-n)
#   otherwise, net = 0 (refunded away)       -> reversed (no money left to move)
# with n = min(x, debt) netted against what the distributor owes (the balance locked in phase 1).
# Postings go to the accounts locked in phase 1 (passed in, so no account lookups here).
#
# Physical order: a partition's commissions are spread over the whole table (rows are stored in
# creation order, the partition is a beneficiary range). Updated beneficiary by beneficiary, every
# row landed on another heap page and another leaf of the order-keyed indexes, and the pages of the
# table, its indexes and ``orders`` were evicted and re-read all the time (at 1M commissions one
# 225k-row partition dirtied 420k buffers and read 630k). ``due`` lists the rows in ctid order, and
# the UPDATE finds them by ctid and their orders in that same order, so each page is visited once
# (38k dirtied, 60k read). A row updated by someone else after this statement's snapshot fails
# the ctid condition on recheck and is simply left pending for the next run (nothing is moved for
# it, consistently); phase 1's account locks make that rare.
SETTLE_PARTITION = statement(
    """
    WITH acct AS (
        SELECT * FROM unnest(CAST(:acc_ids AS bigint[]), CAST(:acc_ds AS bigint[]), CAST(:acc_kinds AS text[]),
                             CAST(:acc_currencies AS text[]), CAST(:acc_balances AS bigint[]))
               AS a(id, distributor_id, kind, currency, balance)
    ), ben AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:was_held AS boolean[])) AS b(d, was_held)
    ), held AS (
        SELECT DISTINCT ON (h.distributor_id) h.distributor_id AS d, h.id AS hold_id
          FROM hold h
         WHERE h.distributor_id BETWEEN :lo AND :hi AND h.reason <> 'maintenance'
           AND h.lifted_at IS NULL AND h.started_at <= now() AND (h.ends_at IS NULL OR h.ends_at > now())
         ORDER BY h.distributor_id, h.started_at, h.id
    ), ok AS (
        SELECT ben.d, held.hold_id FROM ben LEFT JOIN held ON held.d = ben.d
         WHERE (held.d IS NOT NULL) = ben.was_held
    ), due AS MATERIALIZED (
        SELECT c.ctid AS tid, c.order_id, ok.hold_id
          FROM commission c JOIN ok ON ok.d = c.beneficiary_id
         WHERE c.status = 'pending' AND c.hold_until <= :as_of AND c.beneficiary_id BETWEEN :lo AND :hi
         ORDER BY c.ctid
    ), moved AS (
        UPDATE commission c
           SET status = CASE WHEN due.hold_id IS NOT NULL THEN 'withheld'
                             WHEN c.amount = c.reversed THEN 'reversed' ELSE 'available' END,
               withheld_hold_id = coalesce(due.hold_id, c.withheld_hold_id),
               available_at = CASE WHEN due.hold_id IS NULL AND c.amount > c.reversed THEN clock_timestamp()
                                   ELSE c.available_at END
          FROM due, orders o
         WHERE c.ctid = due.tid AND o.id = due.order_id
           AND c.status = 'pending' AND c.hold_until <= :as_of AND c.beneficiary_id BETWEEN :lo AND :hi
        RETURNING c.beneficiary_id AS d, c.amount - c.reversed AS net, o.currency, due.hold_id
    ), agg AS (
        SELECT d, currency,
               coalesce(sum(net) FILTER (WHERE hold_id IS NULL), 0) AS x,
               coalesce(sum(net) FILTER (WHERE hold_id IS NOT NULL), 0) AS w,
               count(*) FILTER (WHERE hold_id IS NULL AND net > 0) AS n_available,
               count(*) FILTER (WHERE hold_id IS NOT NULL) AS n_withheld,
               count(*) FILTER (WHERE hold_id IS NULL AND net = 0) AS n_reversed
          FROM moved GROUP BY d, currency
    ), netting AS (
        SELECT agg.*, least(agg.x, greatest(-coalesce(ow.balance, 0), 0)) AS n
          FROM agg
          LEFT JOIN acct ow ON ow.distributor_id = agg.d AND ow.kind = 'owed' AND ow.currency = agg.currency
    ), lines AS (
        SELECT 'settlement' AS txn, d AS owner, currency, 'pending' AS kind, -x AS amount FROM netting WHERE x > 0
        UNION ALL SELECT 'settlement', d, currency, 'owed', n FROM netting WHERE n > 0
        UNION ALL SELECT 'settlement', d, currency, 'available', x - n FROM netting WHERE x - n > 0
        UNION ALL SELECT 'settlement_withheld', d, currency, 'pending', -w FROM netting WHERE w > 0
        UNION ALL SELECT 'settlement_withheld', d, currency, 'withheld', w FROM netting WHERE w > 0
    ), """
    + posting_ctes(
        kind=None,
        ref_type="'settlement_run'",
        ref_id=":run_ref",
        memo=":memo",
        accounts="acct",
        match=Match.owner,
        in_account_order=True,
    )
    + """, events AS (
    """
    + insert_events(
        topic="commission.available",
        source="netting",
        where="n_available > 0",
        distributor_id="d",
        returning=True,
        payload="""jsonb_build_object('distributor_id', d, 'commissions', n_available, 'currency', currency,
                                  'amount', x, 'netted_against_debt', n, 'available', x - n,
                                  'settlement_run_id', CAST(:run_ref AS bigint))""",
    )
    + """
    )
    SELECT (SELECT coalesce(sum(n_available), 0) FROM agg) AS moved,
           (SELECT coalesce(sum(n_withheld), 0) FROM agg) AS withheld,
           (SELECT coalesce(sum(n_reversed), 0) FROM agg) AS reversed,
           (SELECT coalesce(sum(x), 0) FROM agg) AS amount,
           (SELECT coalesce(sum(w), 0) FROM agg) AS withheld_amount,
           (SELECT coalesce(sum(n), 0) FROM netting) AS netted,
           """
    + posted_columns()
    + """,
           (SELECT count(*) FROM events) AS events
    """
)


@dataclass(frozen=True, slots=True)
class LockedAccounts:
    """What phase 1 locked: the beneficiaries (with their hold state) and their accounts."""

    ids: list[int] = field(default_factory=list)
    held: list[bool] = field(default_factory=list)
    account_ids: list[int] = field(default_factory=list)
    account_ds: list[int] = field(default_factory=list)
    account_kinds: list[str] = field(default_factory=list)
    account_currencies: list[str] = field(default_factory=list)
    account_balances: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PartitionResult:
    moved: int = 0
    withheld: int = 0
    reversed: int = 0
    amount: int = 0
    withheld_amount: int = 0
    netted: int = 0


async def lock_beneficiaries(session: AsyncSession, *, as_of: datetime, lo: int, hi: int) -> LockedAccounts:
    """Phase 1; the locked accounts come back as arrays (one row), ready to be passed to phase 2."""
    row = (await session.execute(LOCK_ACCOUNTS, {"as_of": as_of, "lo": lo, "hi": hi})).one()
    return LockedAccounts(
        ids=list(row.ids),
        held=list(row.held),
        account_ids=list(row.account_ids),
        account_ds=list(row.account_ds),
        account_kinds=list(row.account_kinds),
        account_currencies=list(row.account_currencies),
        account_balances=list(row.account_balances),
    )


async def settle_beneficiaries(
    session: AsyncSession,
    *,
    locked: LockedAccounts,
    as_of: datetime,
    lo: int,
    hi: int,
    run_id: int,
    partition_no: int,
) -> PartitionResult:
    row = (
        await session.execute(
            SETTLE_PARTITION,
            {
                "ids": locked.ids,
                "was_held": locked.held,
                "acc_ids": locked.account_ids,
                "acc_ds": locked.account_ds,
                "acc_kinds": locked.account_kinds,
                "acc_currencies": locked.account_currencies,
                "acc_balances": locked.account_balances,
                "as_of": as_of,
                "lo": lo,
                "hi": hi,
                "run_ref": str(run_id),
                "memo": f"partition {partition_no}",
            },
        )
    ).one()
    # a posting to an account phase 1 did not lock (or that does not exist): refuse rather than
    # lose money silently
    check_posted(f"settlement partition {partition_no}", row.lines, row.posted)
    return PartitionResult(
        moved=int(row.moved),
        withheld=int(row.withheld),
        reversed=int(row.reversed),
        amount=int(row.amount),
        withheld_amount=int(row.withheld_amount),
        netted=int(row.netted),
    )


async def due_bounds(session: AsyncSession, as_of: datetime) -> tuple[int | None, int | None, int]:
    row = (
        await session.execute(
            text(
                """
                SELECT min(beneficiary_id), max(beneficiary_id), count(*) FROM commission
                 WHERE status = 'pending' AND hold_until <= :as_of
                """
            ),
            {"as_of": as_of},
        )
    ).one()
    return row[0], row[1], row[2]


# --------------------------------------------------------------------------- runs and partitions

NOW = text("SELECT now()")


START_RUN = text(
    """
    INSERT INTO settlement_run (as_of, status, partitions, triggered_by)
    VALUES (:as_of, 'running', :n, :by)
    ON CONFLICT (status) WHERE status = 'running' DO NOTHING RETURNING id
    """
)


PLAN_PARTITIONS = text(
    """
    INSERT INTO settlement_partition (run_id, partition_no, lo, hi)
    SELECT :run, n, lo, hi FROM unnest(CAST(:los AS bigint[]), CAST(:his AS bigint[]))
           WITH ORDINALITY AS r(lo, hi, n)
    """
)


FINISH_PARTITION = text(
    """
    UPDATE settlement_partition SET status = 'done', moved = :moved, withheld = :withheld,
           amount = :amount, netted = :netted, finished_at = clock_timestamp()
     WHERE run_id = :run AND partition_no = :no
    """
)


RUN_PARTITION_DONE = text(
    """
    UPDATE settlement_run
       SET partitions_done = partitions_done + 1, moved = moved + :moved, amount = amount + :amount,
           status = CASE WHEN partitions_done + 1 >= partitions THEN 'done' ELSE status END,
           finished_at = CASE WHEN partitions_done + 1 >= partitions THEN clock_timestamp() END
     WHERE id = :run
    """
)


DONE_PARTITIONS = text("SELECT count(*) FROM settlement_partition WHERE run_id = :r AND status = 'done'")


RUN_SUMS = text(
    """
    SELECT coalesce(sum(withheld), 0) AS withheld, coalesce(sum(netted), 0) AS netted
      FROM settlement_partition WHERE run_id = :r
    """
)


PENDING_PARTITIONS = text(
    "SELECT partition_no FROM settlement_partition WHERE run_id = :r AND status = 'pending' "
    "ORDER BY partition_no"
)
