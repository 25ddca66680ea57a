"""All SQL of payout runs and repayments. Every money movement is one statement that writes the
whole ledger transaction (the trigger checks its balance per statement)."""

from __future__ import annotations

from sqlalchemy import text

from distnet.kit.checks import Check
from distnet.kit.outbox import insert_events, statement
from distnet.kit.pg import bulk_settings
from distnet.ledger.postings import Match, posted_columns, posting_ctes

PAYOUT_LOCK = 0x64697374_7061796F  # "distpayo": serialises payout money moves (create, cancel, results)

TAKE_PAYOUT_LOCK = text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=PAYOUT_LOCK)

RUN_SETTINGS = bulk_settings("64MB")

# One statement decides who is paid, locks the candidates and writes the items, the skips and the
# postings, so the candidate set never travels to the client and back (it was four 100k-element
# arrays out and in again).
#
# Pool: every distributor with money available in the run's currency at or above the minimum (a
# closing account's final payout at any amount). Each gets the list of reasons it cannot be paid
# (``reasons``, ARCHITECTURE.md "Payout eligibility"); those with reasons are written to
# ``payout_skip``, the others are candidates.
#
# Candidates are locked FOR NO KEY UPDATE in id order, as the ledger trigger and settlement do, so
# a settlement in flight for one of them finishes first and its money is included, or starts after
# us and finds the money reserved. The lock returns the newest version of each row and re-checks the
# amount condition on it, and nobody can change a locked balance until we commit, so the balances
# returned here are the ones the items reserve. A CTE with a locking clause is evaluated once.
#
# Tax (ARCHITECTURE.md "Tax"): all payments to one person in one month are one income, so an
# item's tax is the tax on the month's gross so far (items not failed, returned or cancelled) plus
# this item, less the tax those items withheld. Postings, one transaction: D.available -gross,
# D.reserved +net, tax_payable +tax (one line for the run). A candidate without a ``reserved``
# account gets no posting, and the caller refuses the run (postings != lines).
CREATE_ITEMS = text(
    """
    WITH risk AS (
        SELECT DISTINCT CAST(x AS bigint) AS d
          FROM risk_case rc, jsonb_array_elements_text(rc.subject -> 'distributor_ids') AS x
         WHERE CAST(:skip_risk AS boolean) AND rc.status = 'open'
           AND jsonb_typeof(rc.subject -> 'distributor_ids') = 'array'
    ), pool AS (
        SELECT a.id AS available_id, a.distributor_id AS d, a.balance AS seen, dist.status = 'closing' AS final_payout,
               pa.id AS payout_account_id,
               array_remove(ARRAY[
                   CASE WHEN dist.erased_at IS NOT NULL OR dist.status = 'erased' THEN 'erased'
                        WHEN dist.status = 'closed' THEN 'closed' END,
                   CASE WHEN pa.id IS NULL OR pa.status = 'erased' THEN 'no_payout_account'
                        WHEN pa.status = 'needs_confirmation' THEN 'payout_account_unconfirmed'
                        WHEN pa.cooling_until > now() THEN 'payout_account_cooling_off' END,
                   CASE WHEN EXISTS (
                        SELECT 1 FROM hold h
                         WHERE h.distributor_id = a.distributor_id AND h.reason <> 'maintenance'
                           AND h.lifted_at IS NULL AND h.started_at <= now()
                           AND (h.ends_at IS NULL OR h.ends_at > now())) THEN 'violation_hold' END,
                   CASE WHEN risk.d IS NOT NULL THEN 'open_risk_case' END,
                   -- DISTNET_REQUIRE_VERIFIED_CONTACT: a first payout needs a verified phone or e-mail
                   CASE WHEN CAST(:require_contact AS boolean) AND dist.phone_verified_at IS NULL
                             AND dist.email_verified_at IS NULL
                             AND NOT EXISTS (SELECT 1 FROM payout_item pi
                                              WHERE pi.distributor_id = a.distributor_id AND pi.status = 'paid')
                        THEN 'contact_unverified' END
               ], NULL) AS reasons
          FROM ledger_account a
          JOIN distributor dist ON dist.id = a.distributor_id
          LEFT JOIN payout_account pa ON pa.distributor_id = a.distributor_id AND pa.superseded_at IS NULL
          LEFT JOIN risk ON risk.d = a.distributor_id
         WHERE a.kind = 'available' AND a.currency = :currency AND a.distributor_id IS NOT NULL
           AND a.balance > 0 AND (a.balance >= :min_amount OR dist.status = 'closing')
    ), skipped AS (
        INSERT INTO payout_skip (run_id, distributor_id, available, reasons)
        SELECT :run, d, seen, reasons FROM pool WHERE cardinality(reasons) > 0
        RETURNING reasons
    ), cand AS (
        SELECT a.id AS available_id, a.distributor_id AS d, a.balance AS amount, r.id AS reserved_id,
               pool.final_payout, pool.payout_account_id
          FROM ledger_account a
          JOIN pool ON pool.available_id = a.id AND cardinality(pool.reasons) = 0
          LEFT JOIN ledger_account r ON r.distributor_id = a.distributor_id AND r.kind = 'reserved'
                                    AND r.currency = a.currency
         WHERE a.balance > 0 AND (a.balance >= :min_amount OR pool.final_payout)
         ORDER BY a.id
           FOR NO KEY UPDATE OF a
    ), taxed AS (
        SELECT cand.*,
               CASE WHEN CAST(:tax_rules AS jsonb) IS NULL THEN 0
                    ELSE least(greatest(distnet_withholding_tax(m.gross + cand.amount, CAST(:tax_rules AS jsonb))
                                        - m.tax, 0), cand.amount) END AS tax
          FROM cand
          CROSS JOIN LATERAL (
                SELECT CAST(coalesce(sum(i.amount), 0) AS bigint) AS gross, CAST(coalesce(sum(i.tax), 0) AS bigint) AS tax
                  FROM payout_item i
                 WHERE i.distributor_id = cand.d AND i.tax_month = CAST(:tax_month AS date)
                   AND i.currency = :currency AND i.status IN ('reserved', 'paid')) m
    ), items AS (
        INSERT INTO payout_item (run_id, distributor_id, amount, currency, status, tax, tax_month, tax_table_id,
                                 payout_account_id, final_payout)
        SELECT :run, d, amount, :currency, 'reserved', tax, CAST(:tax_month AS date), :tax_table_id,
               payout_account_id, final_payout
          FROM taxed ORDER BY d
        RETURNING id
    ), lines AS (
        SELECT p.account_id, p.amount
          FROM taxed
         CROSS JOIN LATERAL (VALUES (taxed.available_id, -taxed.amount), (taxed.reserved_id, taxed.amount - taxed.tax))
               AS p(account_id, amount)
         WHERE p.amount <> 0
        UNION ALL
        SELECT CAST(:tax_account AS bigint), sum(tax) FROM taxed HAVING sum(tax) > 0
    ), """
    + posting_ctes(
        kind="'payout_reserved'",
        ref_type="'payout_run'",
        ref_id="CAST(:run AS text)",
        memo="'payout run items reserved, tax withheld'",
        when="EXISTS (SELECT 1 FROM cand)",
        match=Match.account_id,
    )
    + """
    SELECT (SELECT count(*) FROM items) AS items, (SELECT coalesce(sum(amount), 0) FROM cand) AS total,
           (SELECT coalesce(sum(tax), 0) FROM taxed) AS tax,
           """
    + posted_columns()
    + """,
           (SELECT count(*) FROM skipped) AS skipped
    """
)

SKIPPED_BY_REASON = text(
    """
    SELECT reason, count(*) AS distributors, sum(available) AS amount
      FROM payout_skip, unnest(reasons) AS reason
     WHERE run_id = :run GROUP BY reason ORDER BY reason
    """
)

TAX_ACCOUNT = text(
    "SELECT id FROM ledger_account WHERE distributor_id IS NULL AND kind = 'tax_payable' AND currency = :currency"
)

# The commissions each new item reserves, in a second statement: its snapshot is taken after
# CREATE_ITEMS locked the candidates' ``available`` accounts, so every commission made available
# before we got the lock is visible (settlement locks that account before it marks commissions
# available), and nobody can change which of them are available until we commit (settlement and
# refund reversals lock it first; failed results and cancellations hold PAYOUT_LOCK, as we do).
# An item takes ALL of its distributor's available commissions in the run's currency, oldest
# first: each carries its net until the item's amount is reached. Money netted against debt makes
# the balance smaller than the commissions' net, so the newest carry 0; money a failed item
# returned after a clawback of one of its commissions was repaid makes it larger, so the newest
# carries the rest. Either way the amounts sum to the item's amount, and every commission ends
# 'reserved' (ARCHITECTURE.md, "The money equation").
RESERVE_COMMISSIONS = text(
    """
    WITH alloc AS (
        SELECT i.id AS item_id, c.id AS commission_id, i.amount AS item_amount,
               c.amount - c.reversed AS net,
               coalesce(sum(c.amount - c.reversed) OVER w_before, 0) AS before,
               row_number() OVER w_oldest = count(*) OVER w_item AS last
          FROM payout_item i
          JOIN commission c ON c.beneficiary_id = i.distributor_id AND c.status = 'available'
          JOIN orders o ON o.id = c.order_id AND o.currency = i.currency
         WHERE i.run_id = :run
        -- one sort serves the three windows (the newest is the last row of the oldest-first order)
        WINDOW w_item AS (PARTITION BY i.id),
               w_oldest AS (w_item ORDER BY c.available_at, c.id),
               w_before AS (w_oldest ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ), linked AS (
        INSERT INTO payout_item_commission (item_id, commission_id, amount)
        SELECT item_id, commission_id,
               CASE WHEN last THEN greatest(item_amount - before, 0)
                    ELSE greatest(least(net, item_amount - before), 0) END
          FROM alloc
        RETURNING item_id, commission_id, amount
    ), marked AS (
        UPDATE commission c SET status = 'reserved'
          FROM linked WHERE c.id = linked.commission_id AND c.status = 'available'
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM linked) AS linked, (SELECT count(*) FROM marked) AS marked,
           (SELECT count(*) FROM (SELECT item_id FROM linked GROUP BY item_id) g) AS items,
           (SELECT coalesce(sum(amount), 0) FROM linked) AS total
    """
)

# Before cancelling or applying results: lock the accounts the postings will touch (available,
# reserved, paid of each item's distributor) in id order, BEFORE the statement updates commission
# rows. A refund reversal locks all of a distributor's accounts in id order and only then its
# commission rows; without this the statement would hold commission rows and wait for an account
# (the ledger trigger locks them at the end of the statement) while a reversal holds the account
# and waits for the commission row.
LOCK_ITEM_ACCOUNTS = text(
    """
    SELECT count(*) FROM (
        SELECT a.id FROM ledger_account a
          JOIN payout_item i ON i.distributor_id = a.distributor_id AND a.currency = i.currency
         WHERE i.run_id = :run AND i.status = 'reserved' AND i.id = ANY(CAST(:ids AS bigint[]))
           AND a.kind IN ('available', 'reserved', 'paid')
         ORDER BY a.id FOR NO KEY UPDATE OF a) locked
    """
)

# An item's money back to available: D.<kind> -net, D.available +gross, tax_payable -tax (the
# tax withheld from it is given back). A cancelled draft's items come from ``reserved``, a bank
# return's from ``paid``; ``upd`` has the items.
_BACK_TO_AVAILABLE = """
        SELECT distributor_id AS owner, currency, '{kind}' AS kind, -(amount - tax) AS amount FROM upd WHERE amount > tax
        UNION ALL SELECT distributor_id, currency, 'available', amount FROM upd
        UNION ALL SELECT NULL, currency, 'tax_payable', -tax FROM upd WHERE tax > 0"""

# Cancel a draft: reserved -> available for every item (ARCHITECTURE.md: draft cancelled), and
# exactly the commissions the items reserved go back to 'available'.
CANCEL_ITEMS = text(
    """
    WITH upd AS (
        UPDATE payout_item SET status = 'cancelled', result_at = clock_timestamp()
         WHERE run_id = :run AND status = 'reserved'
        RETURNING id, distributor_id, amount, tax, currency
    ), lines AS ("""
    + _BACK_TO_AVAILABLE.format(kind="reserved")
    + """
    ), """
    + posting_ctes(
        kind="'payout_cancelled'",
        ref_type="'payout_run'",
        ref_id="CAST(:run AS text)",
        memo="'draft payout run cancelled'",
        when="EXISTS (SELECT 1 FROM upd)",
    )
    + """, released AS (
        UPDATE commission c SET status = 'available'
          FROM payout_item_commission pic JOIN upd ON upd.id = pic.item_id
         WHERE c.id = pic.commission_id AND c.status = 'reserved'
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM upd) AS items, """
    + posted_columns()
    + """,
           (SELECT count(*) FROM released) AS commissions
    """
)

# Apply bank results to items still reserved (items already final are left alone: a file imported
# twice changes nothing). paid: D.reserved -a, D.paid +a, and exactly the commissions the item
# reserved become 'paid'; failed: D.reserved -a, D.available +a, and exactly those commissions
# return to 'available'. No other commission changes status.
APPLY_RESULTS = statement(
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
        RETURNING i.id, i.distributor_id, i.amount, i.tax, i.currency, i.status, i.bank_reference, i.failure_reason
    ), lines AS (
        SELECT 'payout_' || status AS txn, distributor_id AS owner, currency, 'reserved' AS kind,
               -(amount - tax) AS amount
          FROM upd WHERE amount > tax
        UNION ALL
        SELECT 'payout_paid', distributor_id, currency, 'paid', amount - tax FROM upd
         WHERE status = 'paid' AND amount > tax
        UNION ALL  -- a failed item's tax is reversed: the whole gross goes back to available
        SELECT 'payout_failed', distributor_id, currency, 'available', amount FROM upd WHERE status = 'failed'
        UNION ALL
        SELECT 'payout_failed', NULL, currency, 'tax_payable', -tax FROM upd WHERE status = 'failed' AND tax > 0
    ), """
    + posting_ctes(kind=None, ref_type="'payout_run'", ref_id="CAST(:run AS text)", memo="'bank results'")
    + """,
    settled_commissions AS (
        UPDATE commission c
           SET status = CASE upd.status WHEN 'paid' THEN 'paid' ELSE 'available' END,
               paid_at = CASE upd.status WHEN 'paid' THEN clock_timestamp() ELSE c.paid_at END
          FROM payout_item_commission pic JOIN upd ON upd.id = pic.item_id
         WHERE c.id = pic.commission_id AND c.status = 'reserved'
        RETURNING c.status
    ), events AS (
    """
    + insert_events(
        topic_sql="'payout.' || status",
        source="upd",
        distributor_id="distributor_id",
        returning=True,
        payload="""jsonb_build_object('run_id', CAST(:run AS bigint), 'item_id', id, 'distributor_id', distributor_id,
                                  'amount', amount - tax, 'gross', amount, 'tax', tax, 'currency', currency,
                                  'status', status, 'reference', bank_reference, 'reason', failure_reason)""",
    )
    + """
    )
    SELECT (SELECT count(*) FILTER (WHERE status = 'paid') FROM upd) AS paid,
           (SELECT count(*) FILTER (WHERE status = 'failed') FROM upd) AS failed,
           """
    + posted_columns()
    + """,
           (SELECT count(*) FROM settled_commissions WHERE status = 'paid') AS commissions_paid,
           (SELECT count(*) FROM settled_commissions WHERE status = 'available') AS commissions_returned
    """
)

# Before a bank return: the accounts its postings touch (available and paid of each returned
# item's distributor; tax_payable follows as a platform account) in id order, then commission
# rows, as LOCK_ITEM_ACCOUNTS does for results.
LOCK_RETURN_ACCOUNTS = text(
    """
    SELECT count(*) FROM (
        SELECT a.id FROM ledger_account a
          JOIN payout_item i ON i.distributor_id = a.distributor_id AND a.currency = i.currency
         WHERE i.run_id = :run AND i.status = 'paid' AND i.id = ANY(CAST(:ids AS bigint[]))
           AND a.kind IN ('available', 'paid')
         ORDER BY a.id FOR NO KEY UPDATE OF a) locked
    """
)

# A bank return (退票) of paid items, one ledger transaction (ARCHITECTURE.md, payout returned):
# D.paid -net, D.available +gross, tax_payable -tax: the money is the distributor's again and the
# tax withheld from it is given back (a returned payment is not income). Exactly the commissions
# the item paid return to 'available' (their carried amounts sum to the gross just credited, so
# the money equation holds), and one ``payout.returned`` event per item tells the owner.
APPLY_RETURNS = statement(
    """
    WITH r AS (
        SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:refs AS text[]), CAST(:reasons AS text[]))
               AS r(id, ref, reason)
    ), upd AS (
        UPDATE payout_item i
           SET status = 'returned', return_reference = r.ref, return_reason = r.reason,
               returned_at = clock_timestamp()
          FROM r
         WHERE i.id = r.id AND i.run_id = :run AND i.status = 'paid'
        RETURNING i.id, i.distributor_id, i.amount, i.tax, i.currency, i.bank_reference, i.return_reference,
                  i.return_reason, i.payout_account_id, i.final_payout
    ), lines AS ("""
    + _BACK_TO_AVAILABLE.format(kind="paid")
    + """
    ), """
    + posting_ctes(
        kind="'payout_returned'",
        ref_type="'payout_run'",
        ref_id="CAST(:run AS text)",
        memo="'bank returns (退票)'",
        when="EXISTS (SELECT 1 FROM upd)",
    )
    + """, restored AS (
        UPDATE commission c SET status = 'available', paid_at = NULL
          FROM payout_item_commission pic JOIN upd ON upd.id = pic.item_id
         WHERE c.id = pic.commission_id AND c.status = 'paid'
        RETURNING 1
    ), events AS (
    """
    + insert_events(
        topic="payout.returned",
        source="upd",
        distributor_id="distributor_id",
        returning=True,
        payload="""jsonb_build_object('run_id', CAST(:run AS bigint), 'item_id', id, 'distributor_id', distributor_id,
                                  'amount', amount - tax, 'gross', amount, 'tax', tax, 'currency', currency,
                                  'status', 'returned', 'reference', bank_reference,
                                  'return_reference', return_reference, 'reason', return_reason,
                                  'final_payout', final_payout)""",
    )
    + """
    )
    SELECT (SELECT count(*) FROM upd) AS returned, (SELECT coalesce(sum(amount), 0) FROM upd) AS gross,
           (SELECT coalesce(sum(tax), 0) FROM upd) AS tax,
           """
    + posted_columns()
    + """,
           (SELECT count(*) FROM restored) AS commissions_restored,
           (SELECT coalesce(array_agg(DISTINCT distributor_id), '{}') FROM upd) AS distributor_ids,
           (SELECT coalesce(array_agg(DISTINCT payout_account_id) FILTER (WHERE payout_account_id IS NOT NULL), '{}')
              FROM upd) AS payout_account_ids
    """
)

# The payout account versions a returned item was paid to, when still current and active, need
# the owner's confirmation again: superseded by a copy marked ``needs_confirmation`` (payout runs
# skip it as ``payout_account_unconfirmed``), so the returned item keeps naming the version it was
# paid to. A version the owner has changed since is left alone: the new one was not returned.
FLAG_RETURNED_ACCOUNTS = text(
    """
    WITH old AS (
        UPDATE payout_account a SET superseded_at = clock_timestamp(), status = 'superseded'
         WHERE a.id = ANY(CAST(:ids AS bigint[])) AND a.superseded_at IS NULL AND a.status = 'active'
        RETURNING a.*
    )
    INSERT INTO payout_account (distributor_id, method, holder_name_enc, account_number_enc, account_hash,
                                account_last4, bank_name, bank_branch, resident_id_enc, resident_id_last4, status,
                                cooling_until, created_by)
    SELECT distributor_id, method, holder_name_enc, account_number_enc, account_hash, account_last4, bank_name,
           bank_branch, resident_id_enc, resident_id_last4, 'needs_confirmation', cooling_until,
           'bank return of payout to version ' || id
      FROM old
    RETURNING distributor_id, id
    """
)


# --------------------------------------------------------------------------- exports, repayments, results files

RUN_SUMMARY = text(
    """
    SELECT r.id, r.status, r.currency, r.cutoff, r.created_by, r.approved_by, r.note,
           count(i.id) FILTER (WHERE i.status <> 'cancelled') AS items,
           coalesce(sum(i.amount) FILTER (WHERE i.status <> 'cancelled'), 0) AS total,
           coalesce(sum(i.tax) FILTER (WHERE i.status <> 'cancelled'), 0) AS tax,
           min(i.tax_month) AS tax_month,
           (SELECT count(*) FROM payout_skip s WHERE s.run_id = r.id) AS skipped
      FROM payout_run r LEFT JOIN payout_item i ON i.run_id = r.id
     WHERE r.id = :run GROUP BY r.id
    """
)


RUN_BY_METHOD = text(
    """
    SELECT coalesce(a.method, c.method, 'bank_card') AS method, count(*) AS items, sum(i.amount) AS gross,
           sum(i.tax) AS tax
      FROM payout_item i
      LEFT JOIN payout_account a ON a.id = i.payout_account_id
      LEFT JOIN payout_account c ON i.payout_account_id IS NULL AND c.distributor_id = i.distributor_id
                                AND c.superseded_at IS NULL
     WHERE i.run_id = :run AND i.status <> 'cancelled'
     GROUP BY 1
    """
)


# the account version the item was created for; items from before payout accounts existed use the
# distributor's current account
EXPORT_ITEMS = text(
    """
    SELECT i.id, d.code, d.name, i.amount, i.tax, i.currency,
           coalesce(a.method, c.method, 'bank_card') AS method,
           coalesce(a.holder_name_enc, c.holder_name_enc) AS holder_enc,
           coalesce(a.account_number_enc, c.account_number_enc) AS account_enc,
           coalesce(a.bank_name, c.bank_name) AS bank, coalesce(a.bank_branch, c.bank_branch) AS branch
      FROM payout_item i
      JOIN distributor d ON d.id = i.distributor_id
      LEFT JOIN payout_account a ON a.id = i.payout_account_id
      LEFT JOIN payout_account c ON i.payout_account_id IS NULL AND c.distributor_id = i.distributor_id
                                AND c.superseded_at IS NULL
     WHERE i.run_id = :run AND i.status <> 'cancelled'
       AND (CAST(:method AS text) IS NULL OR coalesce(a.method, c.method, 'bank_card') = CAST(:method AS text))
     ORDER BY i.id
    """
)


EXPORT_SKIPPED = text(
    """
    SELECT d.code, s.available, array_to_string(s.reasons, ', ') AS reasons
      FROM payout_skip s JOIN distributor d ON d.id = s.distributor_id
     WHERE s.run_id = :run ORDER BY s.distributor_id
    """
)


CLOCK = text("SELECT clock_timestamp()")


LOCK_OWED = text(
    "SELECT balance FROM ledger_account WHERE distributor_id = :d AND kind = 'owed' AND currency = :c "
    "FOR NO KEY UPDATE"
)


SET_REPAYMENT_APPLIED = text("UPDATE repayment SET applied = :a WHERE id = :id")


RUNS_OF_ITEMS = text("SELECT DISTINCT run_id FROM payout_item WHERE id = ANY(:ids)")


# --------------------------------------------------------------------------- checks (ledger verify)
# Money checks of payouts for ``ledger verify`` (invariant 5), in the ledger's ``Check`` shape:
# each selects the offending rows and passes when it selects none.


def _balance_matches_items(kind: str) -> str:
    """Distributors whose ``kind`` balance (reserved, paid) is not the net of their items in that status."""
    return f"""WITH i AS (SELECT distributor_id, currency, sum(amount - tax) AS total FROM payout_item
                         WHERE status = '{kind}' GROUP BY 1, 2)
             SELECT coalesce(a.distributor_id, i.distributor_id) AS distributor_id, coalesce(a.balance, 0) AS {kind},
                    coalesce(i.total, 0) AS items
               FROM (SELECT * FROM ledger_account WHERE kind = '{kind}' AND distributor_id IS NOT NULL) a
               FULL JOIN i ON i.distributor_id = a.distributor_id AND i.currency = a.currency
              WHERE coalesce(a.balance, 0) <> coalesce(i.total, 0)"""


CHECKS: tuple[Check, ...] = (
    Check(
        "reserved_matches_payout_items",
        "each distributor's reserved balance = the net (gross - tax) of its items still reserved",
        _balance_matches_items("reserved"),
    ),
    Check(
        "paid_matches_payout_items",
        "each distributor's paid balance = the net (gross - tax) of its paid items",
        _balance_matches_items("paid"),
    ),
    Check(
        "payout_run_totals",
        "a payout run's item count and total are those of its items",
        """SELECT r.id AS run_id, r.item_count, r.total_amount, count(i.id) AS items, coalesce(sum(i.amount), 0) AS total
               FROM payout_run r LEFT JOIN payout_item i ON i.run_id = r.id
              GROUP BY r.id HAVING r.item_count <> count(i.id) OR r.total_amount <> coalesce(sum(i.amount), 0)""",
    ),
    Check(
        "payout_items_final_when_run_final",
        "completed runs have no reserved item; cancelled runs only cancelled",
        """SELECT r.id AS run_id, r.status, i.id AS item_id, i.status AS item_status
               FROM payout_run r JOIN payout_item i ON i.run_id = r.id
              WHERE (r.status = 'completed' AND i.status = 'reserved')
                 OR (r.status = 'cancelled' AND i.status <> 'cancelled')
                 OR (r.status IN ('draft', 'approved') AND i.status <> 'reserved')""",
    ),
    Check(
        "repayments_posted",
        "every repayment is applied in full and posted once",
        """SELECT r.id AS repayment_id, r.amount, r.applied, count(t.id) AS transactions
               FROM repayment r LEFT JOIN ledger_transaction t ON t.ref_type = 'repayment' AND t.ref_id = r.id::text
              GROUP BY r.id HAVING r.applied <> r.amount OR count(t.id) <> 1""",
    ),
    Check(
        "tax_payable_matches_items",
        "tax_payable = the tax of the payout items not failed, returned or cancelled, per currency",
        """WITH i AS (SELECT currency, sum(tax) AS tax FROM payout_item WHERE status IN ('reserved', 'paid')
                         GROUP BY currency)
             SELECT coalesce(a.currency, i.currency) AS currency, coalesce(a.balance, 0) AS tax_payable,
                    coalesce(i.tax, 0) AS items_tax
               FROM (SELECT * FROM ledger_account WHERE distributor_id IS NULL AND kind = 'tax_payable') a
               FULL JOIN i ON i.currency = a.currency
              WHERE coalesce(a.balance, 0) <> coalesce(i.tax, 0)""",
    ),
    Check(
        "no_payout_to_a_cooling_account",
        "no item was created for (and paid to) a payout account in cooling-off, "
        "unconfirmed, or of another distributor",
        """SELECT i.id AS item_id, i.distributor_id, a.id AS payout_account_id, a.cooling_until, r.cutoff, a.status
               FROM payout_item i JOIN payout_run r ON r.id = i.run_id
               JOIN payout_account a ON a.id = i.payout_account_id
              WHERE i.status IN ('reserved', 'paid', 'returned')
                AND (a.cooling_until > r.created_at OR a.distributor_id <> i.distributor_id
                     OR (a.status = 'needs_confirmation'))""",
    ),
    Check(
        "returned_items_gave_commissions_back",
        "no commission is still paid by an item that failed or came back "
        "from the bank (its latest payout item)",
        """SELECT c.id AS commission_id, c.status, i.id AS item_id, i.status AS item_status
               FROM (SELECT DISTINCT ON (commission_id) commission_id, item_id FROM payout_item_commission
                      ORDER BY commission_id, item_id DESC) l
               JOIN payout_item i ON i.id = l.item_id
               JOIN commission c ON c.id = l.commission_id
              WHERE i.status IN ('failed', 'returned', 'cancelled') AND c.status IN ('paid', 'reserved')""",
    ),
    Check(
        "payout_item_commissions",
        "the commissions a payout item reserved are its distributor's, exist, and "
        "their amounts sum to the item's amount",
        """SELECT i.id AS item_id, i.amount, coalesce(sum(pic.amount), 0) AS commissions,
                    count(pic.commission_id) - count(c.id) AS missing,
                    count(c.id) FILTER (WHERE c.beneficiary_id <> i.distributor_id) AS other_distributor
               FROM payout_item i
               LEFT JOIN payout_item_commission pic ON pic.item_id = i.id
               LEFT JOIN commission c ON c.id = pic.commission_id
              GROUP BY i.id
             HAVING i.amount <> coalesce(sum(pic.amount), 0) OR count(pic.commission_id) <> count(c.id)
                 OR count(c.id) FILTER (WHERE c.beneficiary_id <> i.distributor_id) > 0
             UNION ALL
             SELECT pic.item_id, NULL, pic.amount, 1, 0 FROM payout_item_commission pic
               LEFT JOIN payout_item i ON i.id = pic.item_id WHERE i.id IS NULL""",
    ),
)
