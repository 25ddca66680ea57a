"""SQL of risk: holds and their withheld money, maintenance windows, appeals, rule precision, the
orders behind a hold, the per-order checks. (The detectors and the scan still keep theirs in
``risk/detectors`` and ``risk/scan.py``.)"""

from __future__ import annotations

from sqlalchemy import TextClause, text

# --------------------------------------------------------------------------- holds


INSERT_HOLD = text(
    """
    INSERT INTO hold (distributor_id, card_id, reason, source_type, rule_name, rule_version,
                      risk_case_id, maintenance_window_id, subject_key, placed_by, placed_by_key_id,
                      note, evidence, appealable)
    VALUES (:d, :card, :reason, :source, :rule, :version, :case, :window, :subject, :by, :key,
            :note, CAST(:evidence AS jsonb), :appealable)
    ON CONFLICT DO NOTHING RETURNING id
    """
)


WITHHELD_BY_HOLD = text(
    "SELECT count(*) AS n, coalesce(sum(amount - reversed), 0) AS w FROM commission "
    "WHERE withheld_hold_id = :h AND status = 'withheld'"
)


SETTLE_HOLD_MONEY_ONCE = text(
    "UPDATE hold SET money_settled_at = clock_timestamp() WHERE id = :h AND money_settled_at IS NULL"
)


HAND_OVER_WITHHELD = text(
    "UPDATE commission SET withheld_hold_id = :o WHERE withheld_hold_id = :h AND status = 'withheld'"
)


LOCK_WITHHELD_ACCOUNTS = text(
    """
    SELECT count(*) FROM (
        SELECT id FROM ledger_account
         WHERE (distributor_id = :d AND kind IN ('withheld', 'pending'))
            OR (distributor_id IS NULL AND kind = :to_kind)
         ORDER BY distributor_id IS NULL, id FOR NO KEY UPDATE) locked
    """
)


MOVE_WITHHELD_COMMISSIONS = text(
    """
    UPDATE commission c SET status = :status
      FROM orders o
     WHERE c.withheld_hold_id = :h AND c.status = 'withheld' AND o.id = c.order_id
    RETURNING c.id, c.beneficiary_id, c.amount - c.reversed AS net, o.currency
    """
)


WITHHELD_LEFT = text(
    "EXISTS (SELECT 1 FROM commission c WHERE c.withheld_hold_id = hold.id AND c.status = 'withheld')"
)


SETTLED_DEBT_HOLDS = text(
    """
    SELECT h.id FROM hold h
     WHERE h.reason = 'unpaid_balance' AND h.source_type = 'rule' AND h.lifted_at IS NULL
       AND (CAST(:d AS bigint) IS NULL OR h.distributor_id = CAST(:d AS bigint))
       AND NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.distributor_id = h.distributor_id
                        AND a.kind = 'owed' AND a.balance < 0)
     ORDER BY h.id FOR UPDATE OF h SKIP LOCKED
    """
)


# --------------------------------------------------------------------------- maintenance windows

INSERT_WINDOW_HOLDS = text(
    """
    INSERT INTO hold (distributor_id, card_id, reason, source_type, maintenance_window_id, subject_key,
                      placed_by, note, evidence, started_at, ends_at, appealable)
    SELECT d.id, c.id, 'maintenance', 'window', :w, :subject, 'system', :message,
           jsonb_build_object('maintenance_window_id', CAST(:w AS bigint)), :starts, :ends, false
      FROM distributor d JOIN card c ON c.distributor_id = d.id AND c.cancelled_at IS NULL
     WHERE d.status <> 'closed'
       AND (CAST(:regions AS text[]) IS NULL OR d.region = ANY(CAST(:regions AS text[])))
       AND (CAST(:ranks AS text[]) IS NULL OR d.rank = ANY(CAST(:ranks AS text[])))
    ON CONFLICT DO NOTHING
    """
)


LIFT_WINDOW_HOLDS = text(
    """
    UPDATE hold SET lifted_at = least(:at, coalesce(ends_at, :at)), lifted_by = 'system', lift_note = :note,
                    outcome = 'cleared'
     WHERE maintenance_window_id = :w AND reason = 'maintenance' AND lifted_at IS NULL
    """
)


END_WINDOWS = text(
    """
    UPDATE maintenance_window SET ended_at = :at
     WHERE id IN (SELECT id FROM maintenance_window WHERE ended_at IS NULL AND cancelled_at IS NULL
                    AND ends_at <= :at FOR UPDATE SKIP LOCKED)
    RETURNING id
    """
)


# --------------------------------------------------------------------------- cases, appeals, evidence

RULE_PRECISION = text(
    """
    WITH last AS (SELECT DISTINCT ON (hold_id) hold_id, status FROM appeal
                   WHERE status IN ('approved', 'rejected') ORDER BY hold_id, id DESC)
    SELECT h.rule_name, h.rule_version, count(*) AS holds,
           count(*) FILTER (WHERE last.status = 'rejected') AS confirmed,
           count(*) FILTER (WHERE last.status = 'approved') AS overturned
      FROM hold h LEFT JOIN last ON last.hold_id = h.id
     WHERE h.source_type = 'rule'
     GROUP BY h.rule_name, h.rule_version ORDER BY h.rule_name, h.rule_version
    """
)


OPEN_APPEALS_COUNT = text(
    "SELECT count(*) FROM appeal WHERE status IN ('submitted','in_review','info_requested','escalated')"
)


def _of_seller(of_seller: bool) -> str:
    return "AND o.seller_id = :seller" if of_seller else ""


def orders_behind_counts(*, of_seller: bool) -> TextClause:
    """How many of the orders ``:ids`` (of ``:seller`` only, when ``of_seller``) and their buyers."""
    return text(f"""SELECT count(*) AS n, count(DISTINCT o.buyer_ref_hash) AS buyers FROM orders o
                     WHERE o.id = ANY(CAST(:ids AS bigint[])) {_of_seller(of_seller)}""")


def orders_behind(*, of_seller: bool) -> TextClause:
    """The orders ``:ids`` (of ``:seller`` only, when ``of_seller``), newest first, up to ``:limit``."""
    return text(f"""
        SELECT o.id, o.external_id, o.placed_at, o.amount, o.currency, o.refunded_amount, o.buyer_ref_enc,
               o.buyer_ref_hash, d.code AS seller_code
          FROM orders o JOIN distributor d ON d.id = o.seller_id
         WHERE o.id = ANY(CAST(:ids AS bigint[])) {_of_seller(of_seller)}
         ORDER BY o.placed_at DESC, o.id DESC
         LIMIT :limit
    """)


# --------------------------------------------------------------------------- per-order checks (risk.checks)

SHAREABLE_IDENTITY = text(
    """
    SELECT 'device' AS kind, d.device_hash AS h FROM distributor d
     WHERE d.id = ANY(CAST(:ids AS bigint[])) AND d.device_hash IS NOT NULL
       AND (SELECT count(*) FROM (SELECT 1 FROM distributor x WHERE x.device_hash = d.device_hash
                                   LIMIT :m + 1) c) <= :m
    UNION ALL
    SELECT 'payment', d.payment_hash FROM distributor d
     WHERE d.id = ANY(CAST(:ids AS bigint[])) AND d.payment_hash IS NOT NULL
       AND (SELECT count(*) FROM (SELECT 1 FROM distributor x WHERE x.payment_hash = d.payment_hash
                                   LIMIT :m + 1) c) <= :m
    """
)


CARD_ORDERS_IN_WINDOW = text(
    "SELECT count(*) FROM orders WHERE card_id = :c AND placed_at BETWEEN :t0 AND :t1"
)


SELF_PURCHASE_ORDERS = text(
    """
    SELECT o.id FROM orders o JOIN distributor d ON d.id = :b
     WHERE o.card_id = :c AND o.placed_at >= now() - CAST(:lb AS interval)
       AND (o.buyer_device_hash = d.device_hash OR o.buyer_payment_hash = d.payment_hash)
     ORDER BY o.id
    """
)


ORDERS_BOUGHT_BY = text(
    """
    SELECT o.id, o.seller_id, d.id AS buyer
      FROM distributor d JOIN orders o ON o.buyer_device_hash = d.device_hash
     WHERE d.id = ANY(CAST(:frontier AS bigint[])) AND d.device_hash = ANY(CAST(:dev AS bytea[]))
       AND o.placed_at >= now() - CAST(:lb AS interval) AND o.amount >= :min
    UNION
    SELECT o.id, o.seller_id, d.id
      FROM distributor d JOIN orders o ON o.buyer_payment_hash = d.payment_hash
     WHERE d.id = ANY(CAST(:frontier AS bigint[])) AND d.payment_hash = ANY(CAST(:pay AS bytea[]))
       AND o.placed_at >= now() - CAST(:lb AS interval) AND o.amount >= :min
     ORDER BY 1 LIMIT 2000
    """
)


# Everything the common case needs in one round trip, each part an index lookup bounded by the
# order's card/seller and window: the order; its card's orders in the velocity window
# (ix_orders_card_placed); distributors holding the buyer's device or payment hash
# (ix_distributor_device_hash / _payment_hash) with the hash's share count capped at :cap + 1
# entries; and each such distributor's upline level above the seller (distributor_upline PK).
ORDER_CHECK = text("""
    WITH o AS (SELECT id, card_id, seller_id, amount, placed_at, buyer_device_hash, buyer_payment_hash
                 FROM orders WHERE id = :id),
    b AS (SELECT d.id AS buyer_d, 'device' AS kind,
                 (SELECT count(*) FROM (SELECT 1 FROM distributor x WHERE x.device_hash = o.buyer_device_hash
                                         LIMIT :cap + 1) c) AS shared
            FROM o JOIN distributor d ON d.device_hash = o.buyer_device_hash
          UNION ALL
          SELECT d.id, 'payment',
                 (SELECT count(*) FROM (SELECT 1 FROM distributor x WHERE x.payment_hash = o.buyer_payment_hash
                                         LIMIT :cap + 1) c)
            FROM o JOIN distributor d ON d.payment_hash = o.buyer_payment_hash)
    SELECT o.id, o.card_id, o.seller_id, o.amount, o.placed_at, o.buyer_device_hash, o.buyer_payment_hash,
           CASE WHEN :vel THEN (SELECT count(*) FROM orders x
                                 WHERE x.card_id = o.card_id
                                   AND x.placed_at BETWEEN o.placed_at - CAST(:w AS interval) AND o.placed_at)
           END AS velocity,
           (SELECT coalesce(json_agg(json_build_array(b.buyer_d, b.kind, b.shared,
                                                      CASE WHEN b.buyer_d = o.seller_id THEN 0 ELSE u.level END)), '[]')
              FROM b LEFT JOIN distributor_upline u ON u.distributor_id = o.seller_id AND u.ancestor_id = b.buyer_d
           ) AS buyers
      FROM o
""")
