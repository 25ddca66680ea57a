"""All SQL of points. Points are currency ``PTS`` in the one ledger: per member ``points``
(spendable, never negative) and ``points_owed`` (a points debt, never positive), platform
``points_issued`` (every point ever granted, negative), ``points_redeemed`` and
``points_expired``. They live in lots (``points_lot``); a member's lots' ``remaining`` sum to
its ``points`` balance (ledger verify). Every bulk movement is one set-based statement that
writes the lots and the whole balanced ledger transaction."""

from __future__ import annotations

import functools

from sqlalchemy import TextClause, text

from distnet.ledger.postings import Match, posted_columns, posting_ctes

_ACTIVE_VIOLATION = """EXISTS (SELECT 1 FROM hold h WHERE h.distributor_id = {who} AND h.reason <> 'maintenance'
                   AND h.lifted_at IS NULL AND h.started_at <= now() AND (h.ends_at IS NULL OR h.ends_at > now()))"""

# Lots written by ``lots`` (distributor_id, amount, remaining, netted) as one balanced ledger
# transaction: the spendable part to ``points``, the part that paid a debt to ``points_owed``,
# the whole to ``points_issued``. The accounts exist (opened with the money accounts,
# ledger.service.ensure_accounts): no INSERT … ON CONFLICT here, whose uniqueness check waits
# for any transaction updating the same account row (measured: a second order queued behind the
# first's commit on the platform account).
_POST_LOTS = """, pts_lines AS MATERIALIZED (
    SELECT distributor_id AS owner, 'points' AS kind, sum(remaining)::bigint AS amount FROM lots GROUP BY 1
    UNION ALL
    SELECT distributor_id, 'points_owed', sum(netted)::bigint FROM lots GROUP BY 1
    UNION ALL
    SELECT NULL, 'points_issued', -sum(amount)::bigint FROM lots HAVING count(*) > 0
), """


def _post_lots(*, kind: str, ref_type: str, ref_id: str) -> str:
    """The ``pts_lines``, ``pts_txn`` and ``pts_posted`` CTEs (``pts_``: a statement may also write
    an order's commission transaction, orders.repository.SINGLE)."""
    return _POST_LOTS + posting_ctes(
        kind=kind,
        ref_type=ref_type,
        ref_id=ref_id,
        when="EXISTS (SELECT 1 FROM lots)",
        lines="pts_lines",
        match=Match.separate,
        currency="'PTS'",
        skip_zero=True,
        prefix="pts_",
    )


_POSTED = posted_columns(lines="pts_lines", skip_zero=True, prefix="pts_")
_COUNTS = (
    "SELECT "
    + _POSTED
    + """,
       (SELECT count(*) FROM lots) AS lots, (SELECT coalesce(sum(amount), 0) FROM lots) AS points,
       (SELECT id FROM pts_txn) AS transaction_id"""
)

# A points debt is paid first from what a member earns: the debtors' ``points_owed`` rows are
# locked (only those in debt: a member without debt takes no lock here), and each new lot's
# ``netted`` is the part of the debt left after the member's earlier new lots.
_NETTING = """, debt AS MATERIALIZED (
    SELECT a.distributor_id, -a.balance AS owed FROM ledger_account a
     WHERE a.currency = 'PTS' AND a.kind = 'points_owed' AND a.balance < 0
       AND a.distributor_id IN (SELECT distributor_id FROM earned)
     ORDER BY a.id FOR NO KEY UPDATE
), split AS (
    SELECT e.*, least(e.points, greatest(0, coalesce(d.owed, 0)
                 - (sum(e.points) OVER (PARTITION BY e.distributor_id ORDER BY e.source, e.source_ref) - e.points))) AS netted
      FROM earned e LEFT JOIN debt d ON d.distributor_id = e.distributor_id
     WHERE e.points > 0
)"""


# Points of new orders, at the seller's rank now (after the order's own upgrade: benefits are
# instant) in the catalogue effective at placed_at; referral points to the sponsor of a seller
# whose order is the first at least the catalogue's minimum (the unique lot per (sponsor,
# 'referral', recruit) makes it once). Nothing for a member under a violation hold, nothing for
# orders in another currency than the default. ``source`` names the orders as ``o`` (id,
# seller_id, amount, refunded_amount, currency, placed_at), ``where`` picks them.
def earn_ctes(
    source: str, where: str, *, kind: str, ref_type: str, ref_id: str, new_ranks: str | None = None
) -> str:
    """The CTEs (text after ``WITH `` or ``, ``) that write the orders' points lots and their
    ledger transaction: ``pts_cats``, ``pts_o``, ``pts_held``, ``first_sale``, ``earned``,
    ``debt``, ``split``, ``lots``, ``pts_lines``, ``pts_txn``, ``pts_posted``. ``new_ranks``: a
    CTE of (id, new_rank) written by the same statement (its update is not visible to the
    statement's reads of ``distributor``): those members earn at the new rank."""
    if new_ranks is None:
        seller_rank, sponsor_rank, seller_join, sponsor_join = "d.rank", "s.rank", "", ""
    else:
        seller_rank, sponsor_rank = "coalesce(dn.new_rank, d.rank)", "coalesce(sn.new_rank, s.rank)"
        seller_join = f" LEFT JOIN {new_ranks} dn ON dn.id = d.id"
        sponsor_join = f" LEFT JOIN {new_ranks} sn ON sn.id = s.id"
    return (
        """pts_cats AS (
    -- effective ranges of the catalogue versions: a range join, so an import of millions of
    -- orders costs one hash or merge join, not a lookup per order
    SELECT c.id, c.effective_from, c.referral_min_order, lead(c.effective_from) OVER (ORDER BY c.effective_from) AS until
      FROM (SELECT DISTINCT ON (effective_from) id, effective_from, referral_min_order
              FROM benefit_catalogue ORDER BY effective_from, version DESC) c
), pts_o AS (
    SELECT o.id, o.seller_id, o.amount - o.refunded_amount AS paid, o.placed_at, """
        + seller_rank
        + """ AS rank, d.sponsor_id,
           c.id AS catalogue_id, c.referral_min_order
      FROM """
        + source
        + """ JOIN distributor d ON d.id = o.seller_id AND d.status = 'active'"""
        + seller_join
        + """
      JOIN pts_cats c ON o.placed_at >= c.effective_from AND (c.until IS NULL OR o.placed_at < c.until)
     WHERE """
        + where
        + """ AND o.currency = CAST(:currency AS text)
), pts_held AS (
    SELECT DISTINCT h.distributor_id FROM hold h
     WHERE h.distributor_id IN (SELECT seller_id FROM pts_o UNION SELECT sponsor_id FROM pts_o)
       AND h.reason <> 'maintenance' AND h.lifted_at IS NULL AND h.started_at <= now()
       AND (h.ends_at IS NULL OR h.ends_at > now())
), first_sale AS (
    -- a recruit's first qualifying order among these (earlier ones already made its referral lot)
    SELECT DISTINCT ON (o.seller_id) o.* FROM pts_o o
     WHERE o.sponsor_id IS NOT NULL AND o.paid >= o.referral_min_order
       AND NOT EXISTS (SELECT 1 FROM points_lot p WHERE p.distributor_id = o.sponsor_id AND p.source = 'referral'
                                                    AND p.source_ref = o.seller_id::text)
     ORDER BY o.seller_id, o.placed_at, o.id
), earned AS (
    SELECT o.seller_id AS distributor_id, 'order' AS source, o.id::text AS source_ref, o.id AS order_id,
           o.paid * t.earn_rate_bps / 1000000 AS points
      FROM pts_o o JOIN benefit_tier t ON t.catalogue_id = o.catalogue_id AND t.rank = o.rank
     WHERE o.seller_id NOT IN (SELECT distributor_id FROM pts_held)
    UNION ALL
    SELECT s.id, 'referral', f.seller_id::text, f.id, t.referral_points
      FROM first_sale f JOIN distributor s ON s.id = f.sponsor_id AND s.status = 'active'"""
        + sponsor_join
        + """
      JOIN benefit_tier t ON t.catalogue_id = f.catalogue_id AND t.rank = """
        + sponsor_rank
        + """
     WHERE s.id NOT IN (SELECT distributor_id FROM pts_held)
)"""
        + _NETTING
        + """, lots AS (
    INSERT INTO points_lot (distributor_id, source, source_ref, order_id, amount, remaining, netted, expires_at)
    SELECT distributor_id, source, source_ref, order_id, points, points - netted, netted,
           now() + make_interval(months => CAST(:expiry_months AS int))
      FROM split
    ON CONFLICT (distributor_id, source, source_ref) DO NOTHING
    RETURNING id, distributor_id, source, order_id, amount, remaining, netted
)"""
        + _post_lots(kind=kind, ref_type=ref_type, ref_id=ref_id)
    )


EARNED_COLUMNS = (
    posted_columns(lines="pts_lines", skip_zero=True, prefix="pts_", names="points_")
    + """,
       (SELECT json_agg(json_build_object('lot_id', id, 'distributor_id', distributor_id, 'source', source,
                                          'order_id', order_id, 'points', amount) ORDER BY id)
          FROM lots) AS points_lots,
       EXISTS (SELECT 1 FROM benefit_catalogue) AS has_catalogue"""
)
"""Result columns of :func:`earn_ctes` in a statement of other writes: the postings computed and
written, the lots as a JSON array, whether a catalogue exists (else nothing was earned)."""

_PARAMS = {
    "kind": "CAST(:txn_kind AS text)",
    "ref_type": "CAST(:ref_type AS text)",
    "ref_id": "CAST(:ref_id AS text)",
}


@functools.lru_cache(maxsize=16)
def earn_statement(orders: str) -> TextClause:
    """Points of new orders (``orders``: a query of their ids), one row per lot."""
    return text(
        "WITH "
        + earn_ctes("orders o", f"o.id IN ({orders})", **_PARAMS)
        + """
SELECT c.*, l.id AS lot_id, l.distributor_id, l.source, l.order_id AS lot_order_id, l.amount AS lot_points,
       (SELECT EXISTS (SELECT 1 FROM benefit_catalogue)) AS has_catalogue
  FROM ("""
        + _COUNTS
        + """) c LEFT JOIN lots l ON true
 ORDER BY l.id
"""
    )


# The monthly grant (``:period`` = YYYY-MM): every active member not under a violation hold
# whose rank's tier in the catalogue in effect grants monthly points gets one lot; the unique
# (member, 'monthly', period) lot makes a second run grant nothing. One statement for any number
# of members.
GRANT_MONTHLY = text(
    """
WITH cat AS ("""
    + """SELECT id FROM benefit_catalogue WHERE effective_from <= now()
     ORDER BY effective_from DESC, version DESC LIMIT 1"""
    + """
), earned AS (
    SELECT d.id AS distributor_id, 'monthly' AS source, CAST(:period AS text) AS source_ref,
           CAST(NULL AS bigint) AS order_id, t.monthly_points AS points
      FROM distributor d JOIN benefit_tier t ON t.rank = d.rank AND t.catalogue_id = (SELECT id FROM cat)
     WHERE d.status = 'active' AND t.monthly_points > 0
       AND NOT """
    + _ACTIVE_VIOLATION.format(who="d.id")
    + """
       AND NOT EXISTS (SELECT 1 FROM points_lot p WHERE p.distributor_id = d.id AND p.source = 'monthly'
                                                    AND p.source_ref = CAST(:period AS text))
)"""
    + _NETTING
    + """, lots AS (
    INSERT INTO points_lot (distributor_id, source, source_ref, amount, remaining, netted, expires_at)
    SELECT distributor_id, source, source_ref, points, points - netted, netted,
           now() + make_interval(months => CAST(:expiry_months AS int))
      FROM split
    ON CONFLICT (distributor_id, source, source_ref) DO NOTHING
    RETURNING id, distributor_id, amount, remaining, netted
)"""
    + _post_lots(**_PARAMS)
    + "\n"
    + _COUNTS
)

# Members without points accounts (made outside registration) get them before a grant.
OPEN_MEMBER_ACCOUNTS = text("""
INSERT INTO ledger_account (distributor_id, kind, currency, balance)
SELECT d.id, k, 'PTS', 0 FROM distributor d CROSS JOIN unnest(ARRAY['points', 'points_owed']) k
 WHERE d.status = 'active'
   AND NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.distributor_id = d.id AND a.kind = k AND a.currency = 'PTS')
ON CONFLICT DO NOTHING
""")

# The raw-SQL baseline of the benchmark: the same lots and postings without the hold and debt
# rules, the account opening or the counts. Written by hand on purpose (not ledger.postings): it
# is the reference the builder's statements are measured against.
GRANT_BASELINE = text("""
WITH lots AS (
    INSERT INTO points_lot (distributor_id, source, source_ref, amount, remaining, expires_at)
    SELECT d.id, 'monthly', CAST(:period AS text), t.monthly_points, t.monthly_points, now() + interval '12 months'
      FROM distributor d JOIN benefit_tier t ON t.rank = d.rank
     WHERE t.catalogue_id = (SELECT max(id) FROM benefit_catalogue) AND t.monthly_points > 0
    RETURNING distributor_id, amount
), txn AS (INSERT INTO ledger_transaction (kind) VALUES ('points.baseline') RETURNING id)
INSERT INTO ledger_posting (transaction_id, account_id, amount)
SELECT txn.id, a.id, l.amount FROM lots l CROSS JOIN txn
  JOIN ledger_account a ON a.distributor_id = l.distributor_id AND a.kind = 'points' AND a.currency = 'PTS'
UNION ALL
SELECT txn.id, (SELECT id FROM ledger_account WHERE distributor_id IS NULL AND kind = 'points_issued'
                                              AND currency = 'PTS'), -(SELECT sum(amount) FROM lots)
  FROM txn
""")

# Expiry, first the locks: the points accounts of every member with a lot due, in the one lock
# order of every writer (distributors' accounts by id), before any lot row (a redemption locks its
# account first, then lots: the same order, no cycle).
LOCK_EXPIRING = text("""
SELECT a.id FROM ledger_account a
 WHERE a.currency = 'PTS' AND a.kind = 'points'
   AND a.distributor_id IN (SELECT distributor_id FROM points_lot WHERE remaining > 0 AND expires_at <= now())
 ORDER BY a.id FOR NO KEY UPDATE
""")

# Then every due lot's remaining expires, in one statement, as one balanced transaction.
EXPIRE = text(
    """
WITH due AS (
    SELECT id, remaining FROM points_lot WHERE remaining > 0 AND expires_at <= now() ORDER BY id FOR UPDATE
), lots AS (
    UPDATE points_lot p SET remaining = 0, expired = p.expired + due.remaining FROM due WHERE p.id = due.id
    RETURNING p.distributor_id, due.remaining AS amount
), lines AS (
    SELECT distributor_id AS owner, 'points' AS kind, -sum(amount)::bigint AS amount FROM lots GROUP BY 1
    UNION ALL
    SELECT NULL, 'points_expired', sum(amount)::bigint FROM lots HAVING count(*) > 0
), """
    + posting_ctes(
        kind="'points.expired'",
        ref_type="'points_expiry'",
        ref_id="CAST(:ref_id AS text)",
        when="EXISTS (SELECT 1 FROM lots)",
        currency="'PTS'",
    )
    + """
SELECT """
    + posted_columns()
    + """,
       (SELECT count(*) FROM lots) AS lots, (SELECT coalesce(sum(amount), 0) FROM lots) AS points,
       (SELECT count(DISTINCT distributor_id) FROM lots) AS members
"""
)

EXPIRE_BASELINE = text("""
WITH lots AS (
    UPDATE points_lot SET remaining = 0 WHERE remaining > 0 AND expires_at <= now() RETURNING distributor_id, remaining
), per AS (SELECT distributor_id, sum(remaining) AS amount FROM lots GROUP BY 1),
txn AS (INSERT INTO ledger_transaction (kind) VALUES ('points.baseline') RETURNING id)
INSERT INTO ledger_posting (transaction_id, account_id, amount)
SELECT txn.id, a.id, -per.amount FROM per CROSS JOIN txn
  JOIN ledger_account a ON a.distributor_id = per.distributor_id AND a.kind = 'points' AND a.currency = 'PTS'
UNION ALL
SELECT txn.id, (SELECT id FROM ledger_account WHERE distributor_id IS NULL AND kind = 'points_expired'
                                              AND currency = 'PTS'), (SELECT sum(amount) FROM per)
  FROM txn
""")

# The notice before expiry: per member, the points of lots expiring within the notice period,
# one notice per member and expiry day (event key) in one INSERT … SELECT.
EXPIRY_NOTICES = """
SELECT p.distributor_id, 'points_expiring:' || p.distributor_id || ':' || to_char(min(p.expires_at), 'YYYY-MM-DD'),
       jsonb_build_object('points', sum(p.remaining), 'expires_at', min(p.expires_at), 'days', CAST(:days AS int))
  FROM points_lot p
 WHERE p.remaining > 0 AND p.expires_at > now() AND p.expires_at <= now() + make_interval(days => CAST(:days AS int))
 GROUP BY p.distributor_id
"""

# Spending (redemption, negative adjustment): the member's points account is locked first (every
# spend of one member queues here, so two racing requests never both see the same balance), then
# its open lots oldest-expiring first; each lot gives min(remaining, what is still needed).
LOCK_MEMBER = text("""
SELECT a.id, a.kind, a.balance FROM ledger_account a
 WHERE a.distributor_id = :d AND a.currency = 'PTS' AND a.kind IN ('points', 'points_owed')
 ORDER BY a.id FOR NO KEY UPDATE
""")

CONSUME_FIFO = text("""
WITH locked AS MATERIALIZED (
    SELECT id, remaining, expires_at FROM points_lot WHERE distributor_id = :d AND remaining > 0
     ORDER BY expires_at, id FOR UPDATE
), open AS (
    SELECT id, remaining, sum(remaining) OVER (ORDER BY expires_at, id) - remaining AS before FROM locked
), take AS (
    SELECT id, least(remaining, CAST(:points AS bigint) - before) AS points FROM open WHERE before < :points
), upd AS (
    UPDATE points_lot p SET remaining = p.remaining - take.points FROM take WHERE p.id = take.id RETURNING p.id
)
INSERT INTO points_lot_use (spend_id, lot_id, points)
SELECT :spend, take.id, take.points FROM take
RETURNING lot_id, points
""")


# --------------------------------------------------------------------------- spending, adjustments, views, reports

DISTRIBUTOR_EXISTS = text("SELECT true FROM distributor WHERE id = :d")


OPEN_POINTS_ACCOUNTS = text(
    "INSERT INTO ledger_account (distributor_id, kind, currency, balance) "
    "SELECT :d, k, 'PTS', 0 FROM unnest(ARRAY['points', 'points_owed']) k ON CONFLICT DO NOTHING"
)


LOTS_BALANCE = text(
    "SELECT coalesce(sum(remaining), 0) FROM points_lot WHERE distributor_id = :d AND remaining > 0"
)


SPEND = text(
    "SELECT id, distributor_id, kind, points, purpose, reference, created_at FROM points_spend WHERE id = :i"
)


SPEND_LOTS = text("SELECT lot_id, points FROM points_lot_use WHERE spend_id = :i ORDER BY lot_id")


PRIOR_SPEND = text(
    "SELECT id, request_hash FROM points_spend WHERE distributor_id = :d AND kind = :k AND idempotency_key = :key"
)


INSERT_SPEND = text(
    "INSERT INTO points_spend (distributor_id, kind, idempotency_key, request_hash, points, purpose, reference, "
    "created_by) VALUES (:d, :k, :key, :h, :p, :purpose, :ref, :by) RETURNING id"
)


SET_SPEND_TRANSACTION = text("UPDATE points_spend SET transaction_id = :t WHERE id = :i")


INSERT_ADJUSTMENT_LOT = text(
    """
    INSERT INTO points_lot (distributor_id, source, source_ref, amount, remaining, expires_at)
    VALUES (:d, 'adjustment', :ref, :p, :p, now() + make_interval(months => :months))
    ON CONFLICT (distributor_id, source, source_ref) DO NOTHING RETURNING id
    """
)


ADJUSTMENT_LOT = text(
    "SELECT id FROM points_lot WHERE distributor_id = :d AND source = 'adjustment' AND source_ref = :ref"
)


LOCK_ORDER_LOT = text(
    "SELECT id, amount, remaining, reversed FROM points_lot "
    "WHERE distributor_id = :d AND source = 'order' AND source_ref = :ref FOR UPDATE"
)


# The referral lot an order made (its sponsor's) and the catalogue minimum that qualified it: the
# catalogue in effect at the order's placed_at, as earning chose it.
LOCK_REFERRAL_LOT = text("""
SELECT l.id, l.distributor_id, l.amount, l.remaining, l.reversed, c.referral_min_order
  FROM points_lot l JOIN orders o ON o.id = l.order_id
 CROSS JOIN LATERAL (SELECT referral_min_order FROM benefit_catalogue WHERE effective_from <= o.placed_at
                      ORDER BY effective_from DESC, version DESC LIMIT 1) c
 WHERE l.order_id = :o AND l.source = 'referral'
   FOR UPDATE OF l
""")

REFERRAL_OWNER = text("SELECT distributor_id FROM points_lot WHERE order_id = :o AND source = 'referral'")

LOCK_MEMBERS = text("""
SELECT a.id FROM ledger_account a
 WHERE a.distributor_id = ANY(CAST(:ds AS bigint[])) AND a.currency = 'PTS' AND a.kind IN ('points', 'points_owed')
 ORDER BY a.id FOR NO KEY UPDATE
""")


REVERSE_LOT = text("UPDATE points_lot SET remaining = remaining - :t, reversed = reversed + :r WHERE id = :i")


POINTS_BALANCES = text(
    "SELECT kind, balance FROM ledger_account WHERE distributor_id = :d AND currency = 'PTS'"
)


OPEN_LOTS = text(
    "SELECT id, source, source_ref, amount, remaining, netted, reversed, expired, earned_at, expires_at "
    "FROM points_lot WHERE distributor_id = :d AND remaining > 0 ORDER BY expires_at, id LIMIT 500"
)


LIABILITY_BY_SOURCE = text(
    "SELECT source, count(*) AS lots, count(DISTINCT distributor_id) AS members, sum(remaining) AS points "
    "FROM points_lot WHERE remaining > 0 GROUP BY source ORDER BY source"
)


POINTS_DEBT = text(
    "SELECT coalesce(-sum(balance), 0) FROM ledger_account WHERE currency = 'PTS' AND kind = 'points_owed'"
)


POINTS_BY_MONTH = text(
    """
    SELECT to_char(t.created_at AT TIME ZONE :tz, 'YYYY-MM') AS month,
           coalesce(sum(-p.amount) FILTER (WHERE a.kind = 'points_issued' AND p.amount < 0), 0) AS earned,
           coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_issued' AND t.kind = 'points.reversed'), 0)
               AS reversed,
           coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_redeemed'), 0) AS redeemed,
           coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_issued' AND t.kind = 'points.adjustment'), 0)
               AS adjusted_out,
           coalesce(sum(p.amount) FILTER (WHERE a.kind = 'points_expired'), 0) AS expired
      FROM ledger_posting p
      JOIN ledger_account a ON a.id = p.account_id AND a.currency = 'PTS' AND a.distributor_id IS NULL
      JOIN ledger_transaction t ON t.id = p.transaction_id
     GROUP BY 1 ORDER BY 1
    """
)


MEMBERS_PER_RANK = text(
    """
    SELECT d.rank, count(*) AS members,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM hold h WHERE h.distributor_id = d.id
                            AND h.reason <> 'maintenance' AND h.lifted_at IS NULL AND h.started_at <= now()
                            AND (h.ends_at IS NULL OR h.ends_at > now()))) AS suspended
      FROM distributor d WHERE d.status = 'active' GROUP BY d.rank
    """
)
