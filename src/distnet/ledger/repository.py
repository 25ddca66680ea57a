"""All SQL of the ledger: opening accounts, posting lines, statements, and (at the end) the checks
of ``ledger verify``."""

from __future__ import annotations

from sqlalchemy import TextClause, text

from distnet.kit.checks import Check

OPEN_DISTRIBUTOR_ACCOUNTS = text(
    """
    INSERT INTO ledger_account (distributor_id, kind, currency, balance)
    SELECT d, k, :currency, 0 FROM unnest(CAST(:ids AS bigint[])) AS d, unnest(CAST(:kinds AS text[])) AS k
    UNION ALL
    SELECT d, k, 'PTS', 0 FROM unnest(CAST(:ids AS bigint[])) AS d, unnest(CAST(:points AS text[])) AS k
    ON CONFLICT DO NOTHING
    """
)


# Only the missing ones reach the insert: the unique index's check of an existing platform account
# waits for every in-flight transaction that updated its balance (each batch's commit does), so a
# plain ON CONFLICT made every order batch wait, before any of its work, for the batches in flight
# to commit (37 ms per 1,000-order batch with 4 in flight, BENCHMARKS.md). The NOT EXISTS reads
# the committed row without waiting; ON CONFLICT still settles two first openings at once.
OPEN_PLATFORM_ACCOUNTS = text(
    """
    INSERT INTO ledger_account (distributor_id, kind, currency, balance)
    SELECT NULL, k, CAST(:currency AS text), 0 FROM unnest(CAST(:kinds AS text[])) AS k
     WHERE NOT EXISTS (SELECT 1 FROM ledger_account a
                        WHERE a.distributor_id IS NULL AND a.kind = k AND a.currency = CAST(:currency AS text))
    ON CONFLICT DO NOTHING
    """
)


APPLY_DEFERRED_NOW = text("SET CONSTRAINTS ledger_balance_pending_apply IMMEDIATE")


DEFER_APPLY = text("SET CONSTRAINTS ledger_balance_pending_apply DEFERRED")


OPENING_BALANCES = text(
    """
    SELECT a.kind, coalesce(sum(p.amount), 0) AS total
      FROM ledger_account a JOIN ledger_posting p ON p.account_id = a.id
     WHERE a.distributor_id = :d AND a.currency = :cur
       AND CAST(:start AS timestamptz) IS NOT NULL AND p.created_at < CAST(:start AS timestamptz)
     GROUP BY a.kind
    """
)


STATEMENT_LINES = text(
    """
    SELECT p.created_at AS at, t.id AS transaction_id, t.kind, t.ref_type, t.ref_id, a.kind AS account,
           p.commission_id, p.amount
      FROM ledger_account a
      JOIN ledger_posting p ON p.account_id = a.id
      JOIN ledger_transaction t ON t.id = p.transaction_id
     WHERE a.distributor_id = :d AND a.currency = :cur
       AND (CAST(:start AS timestamptz) IS NULL OR p.created_at >= CAST(:start AS timestamptz))
       AND (CAST(:end AS timestamptz) IS NULL OR p.created_at < CAST(:end AS timestamptz))
     ORDER BY p.id
     LIMIT :limit
    """
)


# --------------------------------------------------------------------------- checks (ledger verify)


def examples(check: Check, limit: int) -> TextClause:
    """The first ``limit`` rows a check selects (its offending rows)."""
    return text(f"SELECT * FROM ({check.sql}) bad LIMIT {int(limit)}")


# The per-distributor money equation (ARCHITECTURE.md). ``carried`` is what a commission carries in
# its latest payout item (its open reservation, or the item that paid it).
MONEY_EQUATION = """
    WITH latest AS (
        SELECT DISTINCT ON (commission_id) commission_id, amount AS carried
          FROM payout_item_commission ORDER BY commission_id, item_id DESC
    ), c AS (
        SELECT c.beneficiary_id AS d, o.currency,
               coalesce(sum(c.amount - c.reversed) FILTER (WHERE c.status = 'pending'), 0) AS pending,
               coalesce(sum(c.amount - c.reversed) FILTER (WHERE c.status = 'withheld'), 0) AS withheld,
               coalesce(sum(l.carried) FILTER (WHERE c.status = 'reserved'), 0) AS reserved,
               coalesce(sum(l.carried) FILTER (WHERE c.status = 'paid'), 0) AS paid,
               coalesce(sum(c.amount - c.reversed) FILTER (WHERE c.status = 'available'), 0) AS available,
               coalesce(sum(c.amount - c.reversed - coalesce(l.carried, 0))
                        FILTER (WHERE c.status IN ('reserved', 'paid')), 0) AS not_carried
          FROM commission c JOIN orders o ON o.id = c.order_id
          LEFT JOIN latest l ON l.commission_id = c.id
         WHERE c.status IN ('pending', 'withheld', 'available', 'reserved', 'paid')
         GROUP BY 1, 2
    ), r AS (
        SELECT a.distributor_id AS d, a.currency, sum(p.amount) AS repaid
          FROM repayment rp
          JOIN ledger_transaction t ON t.ref_type = 'repayment' AND t.ref_id = rp.id::text
          JOIN ledger_posting p ON p.transaction_id = t.id
          JOIN ledger_account a ON a.id = p.account_id AND a.kind = 'owed'
         GROUP BY 1, 2
    ), a AS (
        SELECT distributor_id AS d, currency,
               coalesce(sum(balance) FILTER (WHERE kind = 'pending'), 0) AS pending,
               coalesce(sum(balance) FILTER (WHERE kind = 'withheld'), 0) AS withheld,
               coalesce(sum(balance) FILTER (WHERE kind = 'reserved'), 0) AS reserved,
               coalesce(sum(balance) FILTER (WHERE kind = 'paid'), 0) AS paid,
               coalesce(sum(balance) FILTER (WHERE kind IN ('available', 'owed')), 0) AS available_owed
          FROM ledger_account WHERE distributor_id IS NOT NULL GROUP BY 1, 2
    )
    SELECT coalesce(a.d, c.d) AS distributor_id, coalesce(a.currency, c.currency) AS currency,
           t.term, CAST(t.ledger AS bigint) AS ledger, CAST(t.commissions AS bigint) AS commissions
      FROM a FULL JOIN c ON c.d = a.d AND c.currency = a.currency
      LEFT JOIN r ON r.d = coalesce(a.d, c.d) AND r.currency = coalesce(a.currency, c.currency)
      LEFT JOIN (SELECT distributor_id AS d, currency,
                        sum(tax) FILTER (WHERE status = 'reserved') AS reserved,
                        sum(tax) FILTER (WHERE status = 'paid') AS paid
                   FROM payout_item GROUP BY 1, 2) tx
        ON tx.d = coalesce(a.d, c.d) AND tx.currency = coalesce(a.currency, c.currency)
     CROSS JOIN LATERAL (VALUES
           ('pending', coalesce(a.pending, 0), coalesce(c.pending, 0)),
           ('withheld', coalesce(a.withheld, 0), coalesce(c.withheld, 0)),
           -- items reserve and pay their net; the tax withheld from them is the rest of what
           -- their commissions carry (issue 16)
           ('reserved', coalesce(a.reserved, 0) + coalesce(tx.reserved, 0), coalesce(c.reserved, 0)),
           ('paid', coalesce(a.paid, 0) + coalesce(tx.paid, 0), coalesce(c.paid, 0)),
           ('available + owed', coalesce(a.available_owed, 0),
            coalesce(c.available, 0) + coalesce(c.not_carried, 0) + coalesce(r.repaid, 0))
           ) AS t(term, ledger, commissions)
     WHERE t.ledger <> t.commissions
     ORDER BY 1, 2, 3
"""

CHECKS: tuple[Check, ...] = (
    Check(
        "transactions_balance",
        "every ledger transaction's postings sum to 0",
        "SELECT transaction_id, sum(amount) AS total FROM ledger_posting GROUP BY transaction_id "
        "HAVING sum(amount) <> 0",
    ),
    Check(
        "balances_equal_postings",
        "every account balance equals the sum of its postings",
        """SELECT a.id AS account_id, a.kind, a.distributor_id, a.balance, coalesce(s.total, 0) AS postings
               FROM ledger_account a
               LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_posting GROUP BY account_id) s
                 ON s.account_id = a.id
              WHERE a.balance <> coalesce(s.total, 0)""",
    ),
    Check(
        "account_signs",
        "distributor accounts hold no negative money or points (owed and points_owed are never positive)",
        """SELECT id AS account_id, distributor_id, kind, balance FROM ledger_account
              WHERE distributor_id IS NOT NULL AND ((kind IN ('owed', 'points_owed') AND balance > 0)
                    OR (kind NOT IN ('owed', 'points_owed') AND balance < 0))""",
    ),
    # points (issue 18): currency PTS, kept in lots
    Check(
        "points_lots_match_balances",
        "each member's points balance is what is left in its points lots",
        """SELECT coalesce(a.distributor_id, l.distributor_id) AS distributor_id, coalesce(a.balance, 0) AS balance,
                    coalesce(l.remaining, 0) AS lots
               FROM (SELECT distributor_id, balance FROM ledger_account WHERE currency = 'PTS' AND kind = 'points') a
               FULL JOIN (SELECT distributor_id, sum(remaining) AS remaining FROM points_lot GROUP BY 1) l
                 ON l.distributor_id = a.distributor_id
              WHERE coalesce(a.balance, 0) <> coalesce(l.remaining, 0)""",
    ),
    Check(
        "points_platform_accounts",
        "points issued, redeemed and expired follow the lots and spends: issued = "
        "-(lots earned - reversed - adjustments taken), redeemed = redemptions, "
        "expired = lots expired",
        """WITH a AS (SELECT kind, balance FROM ledger_account WHERE currency = 'PTS' AND distributor_id IS NULL),
                  f AS (SELECT 'points_issued' AS kind,
                               -((SELECT coalesce(sum(amount - reversed), 0) FROM points_lot)
                                 - (SELECT coalesce(sum(points), 0) FROM points_spend WHERE kind = 'adjustment')) AS value
                        UNION ALL SELECT 'points_redeemed', (SELECT coalesce(sum(points), 0) FROM points_spend
                                                              WHERE kind = 'redemption')
                        UNION ALL SELECT 'points_expired', (SELECT coalesce(sum(expired), 0) FROM points_lot))
             SELECT f.kind, coalesce(a.balance, 0) AS ledger, f.value AS lots
               FROM f LEFT JOIN a ON a.kind = f.kind WHERE coalesce(a.balance, 0) <> f.value""",
    ),
    Check(
        "points_spends_use_lots",
        "a redemption or adjustment took exactly its points from lots",
        """SELECT s.id AS spend_id, s.points, coalesce(sum(u.points), 0) AS from_lots
               FROM points_spend s LEFT JOIN points_lot_use u ON u.spend_id = s.id
              GROUP BY s.id, s.points HAVING s.points <> coalesce(sum(u.points), 0)""",
    ),
    Check(
        "commission_formula",
        "commission amount = floor(base x bps / 10000)",
        "SELECT id AS commission_id, base, rate_bps, amount FROM commission "
        "WHERE amount <> base * rate_bps / 10000 OR base < 0",
    ),
    Check(
        "one_commission_per_order_level",
        "at most one commission per (order, level)",
        "SELECT order_id, level, count(*) AS n FROM commission GROUP BY order_id, level HAVING count(*) > 1",
    ),
    Check(
        "commission_base_is_order_amount",
        "a commission's base is its order's amount",
        "SELECT c.id AS commission_id, c.base, o.amount FROM commission c JOIN orders o ON o.id = c.order_id "
        "WHERE c.base <> o.amount",
    ),
    Check(
        "reversed_within_amount",
        "0 <= reversed <= amount",
        "SELECT id AS commission_id, amount, reversed FROM commission WHERE reversed < 0 OR reversed > amount",
    ),
    Check(
        "reversal_follows_refunds",
        "reversed = floor(amount x refunded / order amount) for every commission",
        """SELECT c.id AS commission_id, c.amount, c.reversed, o.refunded_amount, o.amount AS order_amount
               FROM commission c JOIN orders o ON o.id = c.order_id
              WHERE c.reversed <> c.amount * o.refunded_amount / o.amount""",
    ),
    Check(
        "fully_refunded_orders_net_zero",
        "after refunds totalling the order amount every level nets to 0",
        """SELECT c.order_id, c.id AS commission_id, c.amount - c.reversed AS net
               FROM commission c JOIN orders o ON o.id = c.order_id
              WHERE o.refunded_amount = o.amount AND c.amount <> c.reversed""",
    ),
    Check(
        "refunds_sum_to_refunded_amount",
        "an order's refunded amount is the sum of its refunds, <= amount",
        """SELECT o.id AS order_id, o.amount, o.refunded_amount, coalesce(r.total, 0) AS refunds
               FROM orders o LEFT JOIN (SELECT order_id, sum(amount) AS total FROM refund GROUP BY order_id) r
                 ON r.order_id = o.id
              WHERE o.refunded_amount <> coalesce(r.total, 0) OR o.refunded_amount > o.amount""",
    ),
    Check(
        "orders_ingested_once",
        "one order per (source, external_id)",
        "SELECT source, external_id, count(*) AS n FROM orders GROUP BY 1, 2 HAVING count(*) > 1",
    ),
    # orders and commission have no foreign keys (migration 0005): their references are checked here
    Check(
        "fact_references",
        "every order names an existing card of its seller; every commission an existing "
        "order, beneficiary, plan and (when withheld) hold; every posting an existing "
        "account and transaction",
        """SELECT 'order' AS row, o.id, 'card ' || o.card_id || ' / seller ' || o.seller_id AS missing
               FROM orders o LEFT JOIN card c ON c.id = o.card_id
               LEFT JOIN distributor d ON d.id = o.seller_id
              WHERE c.id IS NULL OR d.id IS NULL OR c.distributor_id <> o.seller_id
             UNION ALL
             SELECT 'commission', k.id, concat_ws(', ', CASE WHEN o.id IS NULL THEN 'order ' || k.order_id END,
                                                CASE WHEN d.id IS NULL THEN 'beneficiary ' || k.beneficiary_id END,
                                                CASE WHEN p.id IS NULL THEN 'plan ' || k.plan_id END,
                                                CASE WHEN k.withheld_hold_id IS NOT NULL AND h.id IS NULL
                                                     THEN 'hold ' || k.withheld_hold_id END)
               FROM commission k LEFT JOIN orders o ON o.id = k.order_id
               LEFT JOIN distributor d ON d.id = k.beneficiary_id
               LEFT JOIN commission_plan p ON p.id = k.plan_id
               LEFT JOIN hold h ON h.id = k.withheld_hold_id
              WHERE o.id IS NULL OR d.id IS NULL OR p.id IS NULL OR (k.withheld_hold_id IS NOT NULL AND h.id IS NULL)
             UNION ALL
             SELECT 'posting', lp.id, concat_ws(', ', CASE WHEN a.id IS NULL THEN 'account ' || lp.account_id END,
                                                 CASE WHEN t.id IS NULL THEN 'transaction ' || lp.transaction_id END)
               FROM ledger_posting lp LEFT JOIN ledger_account a ON a.id = lp.account_id
               LEFT JOIN ledger_transaction t ON t.id = lp.transaction_id
              WHERE a.id IS NULL OR t.id IS NULL""",
    ),
    Check(
        "no_available_before_hold_end",
        "no commission became available before its hold end",
        """SELECT id AS commission_id, status, hold_until, available_at FROM commission
              WHERE status IN ('available', 'reserved', 'paid') AND available_at IS NOT NULL AND available_at < hold_until""",
    ),
    Check(
        "withheld_names_its_hold",
        "a withheld commission names the violation hold that withholds it",
        "SELECT id AS commission_id FROM commission WHERE status = 'withheld' AND withheld_hold_id IS NULL",
    ),
    # ARCHITECTURE.md, "The money equation": each distributor's balances against its commissions'
    # statuses, one row per distributor, currency and term that disagree
    Check(
        "money_equation",
        "each distributor's balances follow from its commissions' statuses (ARCHITECTURE.md, the money "
        "equation): pending / withheld = the net of its pending / withheld commissions; reserved / paid = "
        "what its reserved / paid commissions carry in their latest payout item; available + owed = the net "
        "of its available commissions + what its reserved and paid commissions do not carry (debt netting, "
        "clawbacks) + repayments",
        MONEY_EQUATION,
    ),
    Check(
        "expense_matches_commissions",
        "commission expense = - the net of all commissions, per currency",
        """WITH c AS (SELECT o.currency, sum(c.amount - c.reversed) AS net
                          FROM commission c JOIN orders o ON o.id = c.order_id GROUP BY o.currency),
                  e AS (SELECT currency, balance FROM ledger_account
                         WHERE distributor_id IS NULL AND kind = 'commission_expense')
             SELECT coalesce(c.currency, e.currency) AS currency, coalesce(e.balance, 0) AS expense,
                    coalesce(c.net, 0) AS commissions
               FROM c FULL JOIN e ON e.currency = c.currency
              WHERE coalesce(e.balance, 0) <> -coalesce(c.net, 0)""",
    ),
)
