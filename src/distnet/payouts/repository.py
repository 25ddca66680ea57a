"""All SQL of payout runs and repayments. Every money movement is one statement that writes the
whole ledger transaction (the trigger checks its balance per statement)."""

from __future__ import annotations

from sqlalchemy import text

PAYOUT_LOCK = 0x64697374_7061796F  # "distpayo": serialises payout money moves (create, cancel, results)

TAKE_PAYOUT_LOCK = text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=PAYOUT_LOCK)

RUN_WORK_MEM = text("SELECT set_config('work_mem', '64MB', true)")

# One statement locks the candidates and writes the items and their postings, so the candidate
# set never travels to the client and back (it was four 100k-element arrays out and in again).
#
# Candidates: available >= min and no active violation hold (maintenance holds do not block
# payouts). Locked FOR NO KEY UPDATE in id order, as the ledger trigger and settlement do, so
# a settlement in flight for one of them finishes first and its money is included, or starts after
# us and finds the money reserved. The lock returns the newest version of each row, and nobody can
# change a locked balance until we commit, so the balances returned here are the ones the items
# reserve. The same CTE looks up each candidate's ``reserved`` account (not locked here: the
# ledger trigger locks it, in id order, when the postings are written), by ``distributor_id``
# through ``ix_ledger_account_distributor``. A CTE with a locking clause is evaluated once.
#
# Items reserve the whole (locked) available balance, in the same statement as the postings
# D.available -a, D.reserved +a (ARCHITECTURE.md: payout item created). A candidate without a
# ``reserved`` account gets no posting, and the caller refuses the run (postings != 2 * items).
CREATE_ITEMS = text(
    """
    WITH cand AS (
        SELECT a.id AS available_id, a.distributor_id AS d, a.balance AS amount, r.id AS reserved_id
          FROM ledger_account a
          LEFT JOIN ledger_account r ON r.distributor_id = a.distributor_id AND r.kind = 'reserved'
                                    AND r.currency = a.currency
         WHERE a.kind = 'available' AND a.currency = :currency AND a.distributor_id IS NOT NULL
           AND a.balance >= :min_amount AND a.balance > 0
           AND NOT EXISTS (
                SELECT 1 FROM hold h
                 WHERE h.distributor_id = a.distributor_id AND h.reason <> 'maintenance'
                   AND h.lifted_at IS NULL AND h.started_at <= now()
                   AND (h.ends_at IS NULL OR h.ends_at > now()))
         ORDER BY a.id
           FOR NO KEY UPDATE OF a
    ), items AS (
        INSERT INTO payout_item (run_id, distributor_id, amount, currency, status)
        SELECT :run, d, amount, :currency, 'reserved' FROM cand ORDER BY d
        RETURNING id
    ), txn AS (
        INSERT INTO ledger_transaction (kind, ref_type, ref_id, memo)
        SELECT 'payout_reserved', 'payout_run', CAST(:run AS text), 'payout run items reserved'
         WHERE EXISTS (SELECT 1 FROM cand)
        RETURNING id
    ), posted AS (
        INSERT INTO ledger_posting (transaction_id, account_id, amount)
        SELECT txn.id, p.account_id, p.amount
          FROM txn, cand
         CROSS JOIN LATERAL (VALUES (cand.available_id, -cand.amount), (cand.reserved_id, cand.amount))
               AS p(account_id, amount)
         WHERE p.account_id IS NOT NULL
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM items) AS items, (SELECT coalesce(sum(amount), 0) FROM cand) AS total,
           (SELECT count(*) FROM posted) AS postings
    """
)

# Cancel a draft: reserved -> available for every item (ARCHITECTURE.md: draft cancelled).
CANCEL_ITEMS = text(
    """
    WITH upd AS (
        UPDATE payout_item SET status = 'cancelled', result_at = clock_timestamp()
         WHERE run_id = :run AND status = 'reserved'
        RETURNING distributor_id, amount, currency
    ), lines AS (
        SELECT distributor_id, currency, 'reserved' AS kind, -amount AS amount FROM upd
        UNION ALL SELECT distributor_id, currency, 'available', amount FROM upd
    ), txn AS (
        INSERT INTO ledger_transaction (kind, ref_type, ref_id, memo)
        SELECT 'payout_cancelled', 'payout_run', CAST(:run AS text), 'draft payout run cancelled'
         WHERE EXISTS (SELECT 1 FROM upd)
        RETURNING id
    ), posted AS (
        INSERT INTO ledger_posting (transaction_id, account_id, amount)
        SELECT txn.id, a.id, lines.amount FROM txn, lines
          JOIN ledger_account a ON a.distributor_id = lines.distributor_id AND a.kind = lines.kind
                               AND a.currency = lines.currency
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM upd) AS items, (SELECT count(*) FROM lines) AS lines,
           (SELECT count(*) FROM posted) AS postings
    """
)

# Apply bank results to items still reserved (items already final are left alone: a file imported
# twice changes nothing). paid: D.reserved -a, D.paid +a, and the distributor's commissions that
# were available at the run's cutoff become 'paid'; failed: D.reserved -a, D.available +a.
APPLY_RESULTS = text(
    """
    WITH r AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:refs AS text[]),
                             CAST(:reasons AS text[])) AS r(id, status, ref, reason)
    ), upd AS (
        UPDATE payout_item i
           SET status = r.status,
               bank_reference = CASE WHEN r.status = 'paid' THEN r.ref END,
               failure_reason = CASE WHEN r.status = 'failed' THEN r.reason END,
               result_at = clock_timestamp()
          FROM r
         WHERE i.id = r.id AND i.run_id = :run AND i.status = 'reserved'
        RETURNING i.id, i.distributor_id, i.amount, i.currency, i.status, i.bank_reference, i.failure_reason
    ), lines AS (
        SELECT 'payout_' || status AS txn, distributor_id, currency, 'reserved' AS kind, -amount AS amount FROM upd
        UNION ALL
        SELECT 'payout_' || status, distributor_id, currency,
               CASE status WHEN 'paid' THEN 'paid' ELSE 'available' END, amount FROM upd
    ), txn AS (
        INSERT INTO ledger_transaction (kind, ref_type, ref_id, memo)
        SELECT k.kind, 'payout_run', CAST(:run AS text), 'bank results' FROM (SELECT DISTINCT txn AS kind FROM lines) k
        RETURNING id, kind
    ), posted AS (
        INSERT INTO ledger_posting (transaction_id, account_id, amount)
        SELECT txn.id, a.id, lines.amount FROM lines
          JOIN txn ON txn.kind = lines.txn
          JOIN ledger_account a ON a.distributor_id = lines.distributor_id AND a.kind = lines.kind
                               AND a.currency = lines.currency
        RETURNING 1
    ), paid_commissions AS (
        UPDATE commission c SET status = 'paid', paid_at = clock_timestamp()
         WHERE c.status = 'available' AND c.available_at <= :cutoff
           AND c.beneficiary_id IN (SELECT distributor_id FROM upd WHERE status = 'paid')
        RETURNING 1
    ), events AS (
        INSERT INTO outbox_event (id, topic, distributor_id, payload)
        SELECT gen_random_uuid(), 'payout.' || status, distributor_id,
               jsonb_build_object('run_id', CAST(:run AS bigint), 'item_id', id, 'distributor_id', distributor_id,
                                  'amount', amount, 'currency', currency, 'status', status,
                                  'reference', bank_reference, 'reason', failure_reason)
          FROM upd
        RETURNING 1
    )
    SELECT (SELECT count(*) FILTER (WHERE status = 'paid') FROM upd) AS paid,
           (SELECT count(*) FILTER (WHERE status = 'failed') FROM upd) AS failed,
           (SELECT count(*) FROM lines) AS lines, (SELECT count(*) FROM posted) AS postings,
           (SELECT count(*) FROM paid_commissions) AS commissions_paid
    """
)
