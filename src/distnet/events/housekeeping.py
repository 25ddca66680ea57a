"""Pruning of the tables that grow with every event: published outbox rows, consumers'
processed-event markers and delivered e-mail/SMS notifications, after a retention period
(``DISTNET_EVENT_RETENTION_DAYS``, ``DISTNET_NOTIFICATION_RETENTION_DAYS``).

The job (``prune``, every 10 minutes) deletes in batches of :data:`BATCH` rows, each one
statement that picks its rows by an index in key order from the oldest, and at most
:data:`MAX_BATCHES` batches per table and run: a run's transaction stays short, and a backlog
(the first run on an old database) is worked off over a few runs. ``SKIP LOCKED``: a row some
transaction holds (the relay publishing it) is left for the next run.

Why these retention rules: an outbox row is only read until it is published (the relay) and a
processed-event marker only while its event may still be delivered again (dramatiq retries, hours
at most); a week of both is kept to look into incidents. Delivered notices are the delivery log
(and may hold a one-time code's encrypted secret); the inbox, which a distributor reads, is kept."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import rowcount
from distnet.settings import Settings

BATCH = 5_000
MAX_BATCHES = 20

# seq order: old published rows sit at the start of the unique seq index, so a batch stops early
OUTBOX = text("""
    DELETE FROM outbox_event WHERE id IN (
        SELECT id FROM outbox_event
         WHERE published_at < now() - make_interval(days => :days)
         ORDER BY seq LIMIT :batch FOR UPDATE SKIP LOCKED)
""")
PROCESSED = text("""
    DELETE FROM processed_event p USING (
        SELECT consumer, event_id FROM processed_event
         WHERE processed_at < now() - make_interval(days => :days)
         ORDER BY processed_at LIMIT :batch FOR UPDATE SKIP LOCKED) old
     WHERE p.consumer = old.consumer AND p.event_id = old.event_id
""")
NOTIFICATIONS = text("""
    DELETE FROM notification WHERE id IN (
        SELECT id FROM notification
         WHERE status = 'sent' AND channel <> 'inbox' AND sent_at < now() - make_interval(days => :days)
         ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
""")


async def prune(session: AsyncSession, settings: Settings, *, batch: int = BATCH,
                max_batches: int = MAX_BATCHES) -> dict[str, int]:
    """Rows deleted per table in this run (the job runner commits)."""
    keep = settings.housekeeping
    deleted: dict[str, int] = {}
    for table, statement, days in (("outbox_event", OUTBOX, keep.event_retention_days),
                                   ("processed_event", PROCESSED, keep.event_retention_days),
                                   ("notification", NOTIFICATIONS, keep.notification_retention_days)):
        total = 0
        for _ in range(max_batches):
            n = rowcount(await session.execute(statement, {"days": days, "batch": batch}))
            total += n
            if n < batch:
                break
        deleted[table] = total
    return deleted
