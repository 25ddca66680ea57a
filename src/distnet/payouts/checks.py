"""Money checks of payouts for ``ledger verify`` (invariant 5), in the ledger's ``Check`` shape:
each selects the offending rows and passes when it selects none."""

from __future__ import annotations

from distnet.kit.checks import Check

CHECKS: tuple[Check, ...] = (
    Check("reserved_matches_payout_items", "each distributor's reserved balance = the net (gross - tax) of its items still reserved",
          """WITH i AS (SELECT distributor_id, currency, sum(amount - tax) AS total FROM payout_item
                         WHERE status = 'reserved' GROUP BY 1, 2)
             SELECT coalesce(a.distributor_id, i.distributor_id) AS distributor_id, coalesce(a.balance, 0) AS reserved,
                    coalesce(i.total, 0) AS items
               FROM (SELECT * FROM ledger_account WHERE kind = 'reserved' AND distributor_id IS NOT NULL) a
               FULL JOIN i ON i.distributor_id = a.distributor_id AND i.currency = a.currency
              WHERE coalesce(a.balance, 0) <> coalesce(i.total, 0)"""),
    Check("paid_matches_payout_items", "each distributor's paid balance = the net (gross - tax) of its paid items",
          """WITH i AS (SELECT distributor_id, currency, sum(amount - tax) AS total FROM payout_item
                         WHERE status = 'paid' GROUP BY 1, 2)
             SELECT coalesce(a.distributor_id, i.distributor_id) AS distributor_id, coalesce(a.balance, 0) AS paid,
                    coalesce(i.total, 0) AS items
               FROM (SELECT * FROM ledger_account WHERE kind = 'paid' AND distributor_id IS NOT NULL) a
               FULL JOIN i ON i.distributor_id = a.distributor_id AND i.currency = a.currency
              WHERE coalesce(a.balance, 0) <> coalesce(i.total, 0)"""),
    Check("payout_run_totals", "a payout run's item count and total are those of its items",
          """SELECT r.id AS run_id, r.item_count, r.total_amount, count(i.id) AS items, coalesce(sum(i.amount), 0) AS total
               FROM payout_run r LEFT JOIN payout_item i ON i.run_id = r.id
              GROUP BY r.id HAVING r.item_count <> count(i.id) OR r.total_amount <> coalesce(sum(i.amount), 0)"""),
    Check("payout_items_final_when_run_final", "completed runs have no reserved item; cancelled runs only cancelled",
          """SELECT r.id AS run_id, r.status, i.id AS item_id, i.status AS item_status
               FROM payout_run r JOIN payout_item i ON i.run_id = r.id
              WHERE (r.status = 'completed' AND i.status = 'reserved')
                 OR (r.status = 'cancelled' AND i.status <> 'cancelled')
                 OR (r.status IN ('draft', 'approved') AND i.status <> 'reserved')"""),
    Check("repayments_posted", "every repayment is applied in full and posted once",
          """SELECT r.id AS repayment_id, r.amount, r.applied, count(t.id) AS transactions
               FROM repayment r LEFT JOIN ledger_transaction t ON t.ref_type = 'repayment' AND t.ref_id = r.id::text
              GROUP BY r.id HAVING r.applied <> r.amount OR count(t.id) <> 1"""),
    Check("tax_payable_matches_items", "tax_payable = the tax of the payout items not failed, returned or cancelled, "
                                       "per currency",
          """WITH i AS (SELECT currency, sum(tax) AS tax FROM payout_item WHERE status IN ('reserved', 'paid')
                         GROUP BY currency)
             SELECT coalesce(a.currency, i.currency) AS currency, coalesce(a.balance, 0) AS tax_payable,
                    coalesce(i.tax, 0) AS items_tax
               FROM (SELECT * FROM ledger_account WHERE distributor_id IS NULL AND kind = 'tax_payable') a
               FULL JOIN i ON i.currency = a.currency
              WHERE coalesce(a.balance, 0) <> coalesce(i.tax, 0)"""),
    Check("no_payout_to_a_cooling_account", "no item was created for (and paid to) a payout account in cooling-off, "
                                            "unconfirmed, or of another distributor",
          """SELECT i.id AS item_id, i.distributor_id, a.id AS payout_account_id, a.cooling_until, r.cutoff, a.status
               FROM payout_item i JOIN payout_run r ON r.id = i.run_id
               JOIN payout_account a ON a.id = i.payout_account_id
              WHERE i.status IN ('reserved', 'paid', 'returned')
                AND (a.cooling_until > r.created_at OR a.distributor_id <> i.distributor_id
                     OR (a.status = 'needs_confirmation'))"""),
    Check("returned_items_gave_commissions_back", "no commission is still paid by an item that failed or came back "
                                                   "from the bank (its latest payout item)",
          """SELECT c.id AS commission_id, c.status, i.id AS item_id, i.status AS item_status
               FROM (SELECT DISTINCT ON (commission_id) commission_id, item_id FROM payout_item_commission
                      ORDER BY commission_id, item_id DESC) l
               JOIN payout_item i ON i.id = l.item_id
               JOIN commission c ON c.id = l.commission_id
              WHERE i.status IN ('failed', 'returned', 'cancelled') AND c.status IN ('paid', 'reserved')"""),
    Check("payout_item_commissions", "the commissions a payout item reserved are its distributor's, exist, and "
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
               LEFT JOIN payout_item i ON i.id = pic.item_id WHERE i.id IS NULL"""),
)
