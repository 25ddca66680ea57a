"""All SQL of settlement. Each partition moves its commissions with set-based statements; the
postings of a partition are written by ONE INSERT ... SELECT so that the ledger trigger checks
every transaction's balance at once (see ARCHITECTURE.md, ledger postings table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Lock every money account of the beneficiaries that have due pending commissions in the range,
# in id order (the ledger trigger locks in id order too, and so does payout-run creation, so the
# three never deadlock). Holding them makes a concurrent settlement of the same distributor wait,
# and the owed balance read for netting cannot change under us.
LOCK_BENEFICIARIES = text(
    """
    SELECT coalesce(array_agg(DISTINCT s.distributor_id), '{}') FROM (
        SELECT a.distributor_id FROM ledger_account a
         WHERE a.distributor_id IN (
                 SELECT c.beneficiary_id FROM commission c
                  WHERE c.status = 'pending' AND c.hold_until <= :as_of
                    AND c.beneficiary_id BETWEEN :lo AND :hi)
           AND a.kind IN ('pending', 'available', 'withheld', 'owed')
         ORDER BY a.id
           FOR UPDATE) s
    """
)

# One statement per partition (its snapshot is taken after LOCK_BENEFICIARIES, so rows moved by a
# run that held the locks before us are no longer 'pending' here). Commission rows locked by
# someone else (a refund reversal in flight) are skipped, not waited for: the next run takes them.
#   held beneficiary (active violation hold)  -> withheld:  D.pending -w, D.withheld +w
#   otherwise, net > 0                       -> available: D.pending -x, D.owed +n, D.available +(x-n)
#   otherwise, net = 0 (refunded away)       -> reversed (no money left to move)
# with n = min(x, debt) netted against what the distributor owes.
SETTLE_PARTITION = text(
    """
    WITH held AS (
        SELECT DISTINCT ON (h.distributor_id) h.distributor_id, h.id AS hold_id
          FROM hold h
         WHERE h.distributor_id = ANY(CAST(:ids AS bigint[])) AND h.reason <> 'maintenance'
           AND h.lifted_at IS NULL AND h.started_at <= now() AND (h.ends_at IS NULL OR h.ends_at > now())
         ORDER BY h.distributor_id, h.started_at, h.id
    ), due AS (
        SELECT c.id, c.beneficiary_id AS d, c.amount - c.reversed AS net, o.currency, held.hold_id
          FROM commission c
          JOIN orders o ON o.id = c.order_id
          LEFT JOIN held ON held.distributor_id = c.beneficiary_id
         WHERE c.status = 'pending' AND c.hold_until <= :as_of
           AND c.beneficiary_id = ANY(CAST(:ids AS bigint[]))
           FOR UPDATE OF c SKIP LOCKED
    ), moved AS (
        UPDATE commission c
           SET status = CASE WHEN due.hold_id IS NOT NULL THEN 'withheld'
                             WHEN due.net = 0 THEN 'reversed' ELSE 'available' END,
               withheld_hold_id = coalesce(due.hold_id, c.withheld_hold_id),
               available_at = CASE WHEN due.hold_id IS NULL AND due.net > 0 THEN clock_timestamp()
                                   ELSE c.available_at END
          FROM due
         WHERE c.id = due.id
        RETURNING c.id
    ), agg AS (
        SELECT d, currency,
               coalesce(sum(net) FILTER (WHERE hold_id IS NULL), 0) AS x,
               coalesce(sum(net) FILTER (WHERE hold_id IS NOT NULL), 0) AS w,
               count(*) FILTER (WHERE hold_id IS NULL AND net > 0) AS n_available,
               count(*) FILTER (WHERE hold_id IS NOT NULL) AS n_withheld,
               count(*) FILTER (WHERE hold_id IS NULL AND net = 0) AS n_reversed
          FROM due GROUP BY d, currency
    ), netting AS (
        SELECT agg.*, least(agg.x, greatest(-coalesce(ow.balance, 0), 0)) AS n
          FROM agg
          LEFT JOIN ledger_account ow ON ow.distributor_id = agg.d AND ow.kind = 'owed'
                                     AND ow.currency = agg.currency
    ), lines AS (
        SELECT 'settlement' AS txn, d, currency, 'pending' AS kind, -x AS amount FROM netting WHERE x > 0
        UNION ALL SELECT 'settlement', d, currency, 'owed', n FROM netting WHERE n > 0
        UNION ALL SELECT 'settlement', d, currency, 'available', x - n FROM netting WHERE x - n > 0
        UNION ALL SELECT 'settlement_withheld', d, currency, 'pending', -w FROM netting WHERE w > 0
        UNION ALL SELECT 'settlement_withheld', d, currency, 'withheld', w FROM netting WHERE w > 0
    ), txn AS (
        INSERT INTO ledger_transaction (kind, ref_type, ref_id, memo)
        SELECT k.kind, 'settlement_run', :run_ref, :memo
          FROM (SELECT DISTINCT txn AS kind FROM lines) k
        RETURNING id, kind
    ), posted AS (
        INSERT INTO ledger_posting (transaction_id, account_id, amount)
        SELECT txn.id, a.id, lines.amount
          FROM lines
          JOIN txn ON txn.kind = lines.txn
          JOIN ledger_account a ON a.distributor_id = lines.d AND a.kind = lines.kind
                               AND a.currency = lines.currency
        RETURNING 1
    ), events AS (
        INSERT INTO outbox_event (id, topic, distributor_id, payload)
        SELECT gen_random_uuid(), 'commission.available', d,
               jsonb_build_object('distributor_id', d, 'commissions', n_available, 'currency', currency,
                                  'amount', x, 'netted_against_debt', n, 'available', x - n,
                                  'settlement_run_id', CAST(:run_ref AS bigint))
          FROM netting WHERE n_available > 0
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved) AS rows_moved,
           (SELECT coalesce(sum(n_available), 0) FROM agg) AS moved,
           (SELECT coalesce(sum(n_withheld), 0) FROM agg) AS withheld,
           (SELECT coalesce(sum(n_reversed), 0) FROM agg) AS reversed,
           (SELECT coalesce(sum(x), 0) FROM agg) AS amount,
           (SELECT coalesce(sum(w), 0) FROM agg) AS withheld_amount,
           (SELECT coalesce(sum(n), 0) FROM netting) AS netted,
           (SELECT count(*) FROM lines) AS lines,
           (SELECT count(*) FROM posted) AS postings,
           (SELECT count(*) FROM events) AS events
    """
)


@dataclass(frozen=True, slots=True)
class PartitionResult:
    moved: int = 0
    withheld: int = 0
    reversed: int = 0
    amount: int = 0
    withheld_amount: int = 0
    netted: int = 0


async def lock_beneficiaries(session: AsyncSession, *, as_of: datetime, lo: int, hi: int) -> list[int]:
    return list(await session.scalar(LOCK_BENEFICIARIES, {"as_of": as_of, "lo": lo, "hi": hi}) or [])


async def settle_beneficiaries(
    session: AsyncSession, *, ids: list[int], as_of: datetime, run_id: int, partition_no: int
) -> PartitionResult:
    row = (
        await session.execute(
            SETTLE_PARTITION,
            {"ids": ids, "as_of": as_of, "run_ref": str(run_id), "memo": f"partition {partition_no}"},
        )
    ).one()
    if row.postings != row.lines:
        # a beneficiary without its ledger accounts: refuse rather than lose money silently
        raise RuntimeError(f"settlement partition {partition_no}: wrote {row.postings} of {row.lines} postings")
    return PartitionResult(
        moved=int(row.moved), withheld=int(row.withheld), reversed=int(row.reversed), amount=int(row.amount),
        withheld_amount=int(row.withheld_amount), netted=int(row.netted),
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
