"""SQL of risk: holds and their withheld money, maintenance windows, appeals, rule precision, the
orders behind a hold. (The detectors and the scan keep theirs in ``risk/detectors`` and
``risk/scan.py``; the per-order checks in ``risk/checks.py``.)"""

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


SETTLE_HOLD_MONEY_ONCE = text("UPDATE hold SET money_settled_at = clock_timestamp() WHERE id = :h AND money_settled_at IS NULL")


HAND_OVER_WITHHELD = text("UPDATE commission SET withheld_hold_id = :o WHERE withheld_hold_id = :h AND status = 'withheld'")


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
    "EXISTS (SELECT 1 FROM commission c WHERE c.withheld_hold_id = hold.id "
    "AND c.status = 'withheld')"
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


OPEN_APPEALS_COUNT = text("SELECT count(*) FROM appeal WHERE status IN ('submitted','in_review','info_requested','escalated')")


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
