"""SQL of the worker side: the scheduler's leader probe (psycopg, ``%s`` parameters) and the
counts the demo reports."""

from __future__ import annotations

from sqlalchemy import text

# who holds the scheduler's leader lock (an advisory lock of key ``%s``): its application_name
LEADER_OF = """
    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
           SELECT oid FROM pg_database WHERE datname = current_database())
       AND ((l.classid::bigint << 32) | l.objid::bigint) = %s
"""

# --------------------------------------------------------------------------- the demo's report


DEMO_EVENTS_BY_TOPIC = text("SELECT topic, count(*) FROM outbox_event GROUP BY topic ORDER BY count(*) DESC")


DEMO_PROCESSED_EVENTS = text("SELECT count(*) FROM processed_event")


DEMO_BLOCKED_FROM_CLOSING = text(
    "SELECT distributor_id FROM hold WHERE lifted_at IS NULL UNION "
    "SELECT distributor_id FROM appeal UNION "
    "SELECT distributor_id FROM ledger_account WHERE kind = 'owed' AND balance <> 0"
)


DEMO_INBOX_BY_KIND = text(
    "SELECT kind, count(*) FROM notification WHERE channel = 'inbox' GROUP BY kind ORDER BY count(*) DESC"
)


DEMO_COMMISSIONS_BY_LEVEL = text(
    "SELECT level, count(*), coalesce(sum(amount - reversed), 0) FROM commission GROUP BY level "
    "ORDER BY level"
)


DEMO_COMMISSIONS_BY_STATUS = text("SELECT status, count(*) FROM commission GROUP BY status ORDER BY status")
