"""The SQL of the finance reports: one named statement per figure (reports.service and
reports.money shape the rows)."""

from __future__ import annotations

from sqlalchemy import text

DISTRIBUTOR = text("SELECT id, code, name FROM distributor WHERE id = :d")

STATEMENT_BY_STATUS = text(
    """
    SELECT status, count(*) AS n, sum(amount) AS amount, sum(reversed) AS reversed, sum(amount - reversed) AS net
      FROM commission WHERE beneficiary_id = :d AND created_at >= :start AND created_at < :end
     GROUP BY status ORDER BY status
    """
)

STATEMENT_ROWS = text(
    """
    SELECT c.id, c.order_id, o.external_id, c.level, c.rate_bps, c.base, c.amount, c.reversed,
           c.amount - c.reversed AS net, c.status, c.created_at, c.hold_until, c.available_at, c.paid_at
      FROM commission c JOIN orders o ON o.id = c.order_id
     WHERE c.beneficiary_id = :d AND c.created_at >= :start AND c.created_at < :end
     ORDER BY c.id
    """
)

PAYOUT_RUN = text("SELECT * FROM payout_run WHERE id = :r")

PAYOUT_RUN_BY_STATUS = text(
    "SELECT status, count(*) AS n, sum(amount) AS amount FROM payout_item WHERE run_id = :r "
    "GROUP BY status ORDER BY status"
)

PAYOUT_ROWS = text(
    """
    SELECT i.id, i.distributor_id, d.code, d.name, i.amount, i.currency, i.status, i.bank_reference,
           i.failure_reason, i.result_at
      FROM payout_item i JOIN distributor d ON d.id = i.distributor_id
     WHERE i.run_id = :run ORDER BY i.id
    """
)

TRIAL_BALANCE = text(
    """
    WITH sums AS (
        SELECT account_id, sum(amount) AS total FROM ledger_posting GROUP BY account_id
    )
    SELECT a.kind, CASE WHEN a.distributor_id IS NULL THEN 'platform' ELSE 'distributors' END AS owner,
           a.currency, count(*) AS accounts, sum(a.balance) AS balance, coalesce(sum(s.total), 0) AS postings
      FROM ledger_account a LEFT JOIN sums s ON s.account_id = a.id
     GROUP BY 1, 2, 3 ORDER BY 3, 2 DESC, 1
    """
)

# What is owed, aged by the date each piece of debt arose. Debt postings (negative, on the owed
# account) are paid down first-in first-out by the credits (netting at settlement, repayments):
# the part of a debt still open is min(its amount, cumulative debt up to it - all credits).
AGEING_ROWS = text(
    """
    WITH p AS (
        SELECT a.distributor_id AS d, p.id, p.created_at, p.amount
          FROM ledger_posting p JOIN ledger_account a ON a.id = p.account_id
         WHERE a.kind = 'owed' AND a.currency = :currency AND p.created_at <= :as_of
    ), debts AS (
        SELECT d, id, created_at, -amount AS debt,
               sum(-amount) OVER (PARTITION BY d ORDER BY created_at, id) AS cumulative
          FROM p WHERE amount < 0
    ), credits AS (
        SELECT d, sum(amount) AS paid FROM p WHERE amount > 0 GROUP BY d
    ), open_debt AS (
        SELECT debts.d, debts.created_at,
               greatest(0, least(debts.debt, debts.cumulative - coalesce(c.paid, 0))) AS open,
               extract(epoch FROM (CAST(:as_of AS timestamptz) - debts.created_at)) / 86400 AS age
          FROM debts LEFT JOIN credits c ON c.d = debts.d
    )
    SELECT o.d, dist.code, dist.name, sum(o.open) AS owed,
           coalesce(sum(o.open) FILTER (WHERE o.age < 31), 0) AS b0,
           coalesce(sum(o.open) FILTER (WHERE o.age >= 31 AND o.age < 61), 0) AS b1,
           coalesce(sum(o.open) FILTER (WHERE o.age >= 61 AND o.age < 91), 0) AS b2,
           coalesce(sum(o.open) FILTER (WHERE o.age >= 91), 0) AS b3,
           min(o.created_at) FILTER (WHERE o.open > 0) AS oldest
      FROM open_debt o JOIN distributor dist ON dist.id = o.d
     GROUP BY o.d, dist.code, dist.name
    HAVING sum(o.open) > 0
     ORDER BY oldest, o.d
    """
)

# withheld: commissions still withheld, by the month they were earned; forfeited: by the month
# their hold's money was forfeited. Both by the reason of the hold that withheld them.
WITHHELD = text(
    """
    SELECT 'withheld' AS kind, coalesce(h.reason, 'unknown') AS reason,
           to_char(c.created_at AT TIME ZONE :tz, 'YYYY-MM') AS month, count(*) AS n, sum(c.amount - c.reversed) AS amount
      FROM commission c LEFT JOIN hold h ON h.id = c.withheld_hold_id
     WHERE c.status = 'withheld' AND c.currency_ok
     GROUP BY 1, 2, 3
    UNION ALL
    SELECT 'forfeited', coalesce(h.reason, 'unknown'),
           to_char(coalesce(h.money_settled_at, c.created_at) AT TIME ZONE :tz, 'YYYY-MM'), count(*),
           sum(c.amount - c.reversed)
      FROM commission c LEFT JOIN hold h ON h.id = c.withheld_hold_id
     WHERE c.status = 'forfeited' AND c.currency_ok
     GROUP BY 1, 2, 3
     ORDER BY 3, 1, 2
    """.replace(
        "c.currency_ok", "EXISTS (SELECT 1 FROM orders o WHERE o.id = c.order_id AND o.currency = :currency)"
    )
)

# payouts by the month of their run's cutoff (the tax month)
PAYOUTS_BY_MONTH = text(
    """
    SELECT to_char(r.cutoff AT TIME ZONE :tz, 'YYYY-MM') AS month, i.status, count(*) AS n, sum(i.amount) AS gross,
           sum(i.tax) AS tax
      FROM payout_item i JOIN payout_run r ON r.id = i.run_id
     WHERE i.currency = :currency
     GROUP BY 1, 2 ORDER BY 1, 2
    """
)
