"""SQL of the shared plumbing: the guard's API-key lookup, the replica lag probe, and the state
gauges of /metrics."""

from __future__ import annotations

from sqlalchemy import text

# one prepared statement on the request's own connection and transaction (kit/unit_of_work)
KEY_LOOKUP = text(
    "SELECT k.id, k.name, k.roles, k.distributor_id, k.staff_id, s.name AS staff_name, "
    "s.disabled_at IS NOT NULL AS staff_disabled "
    "FROM api_key k LEFT JOIN staff s ON s.id = k.staff_id "
    "WHERE k.key_hash = :digest AND k.revoked_at IS NULL"
)

# seconds a replica is behind its primary (0 on a primary or a caught-up replica)
REPLICA_LAG = text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0.0 "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0 "
    "ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 1e9) END"
)

# the state gauges of /metrics (kit.metrics.exposition): outbox lag, appeals, active holds
METRICS_STATE = text("""
SELECT (SELECT count(*) FROM outbox_event WHERE published_at IS NULL) AS unpublished,
       (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox_event
         WHERE published_at IS NULL) AS oldest_unpublished_s,
       (SELECT count(*) FROM appeal WHERE status NOT IN ('approved', 'rejected')) AS open_appeals,
       (SELECT count(*) FROM appeal WHERE status NOT IN ('approved', 'rejected') AND paused_at IS NULL
           AND due_at < now()) AS overdue_appeals,
       (SELECT count(*) FROM hold WHERE lifted_at IS NULL AND started_at <= now()
           AND (ends_at IS NULL OR ends_at > now())) AS active_holds
""")
