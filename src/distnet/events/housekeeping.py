"""Pruning of the tables that grow with every event: published outbox rows, consumers'
processed-event markers and delivered e-mail/SMS notifications, after a retention period
(``DISTNET_EVENT_RETENTION_DAYS``, ``DISTNET_NOTIFICATION_RETENTION_DAYS``); and replaced contact
addresses (``previous_contact``) once their notice window
(``notifications.service.PREVIOUS_CONTACT_NOTICE_DAYS``) has passed: nothing reads them after it,
and personal data is kept no longer than it serves a purpose.

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

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import rowcount
from distnet.events import repository as repo
from distnet.notifications.service import PREVIOUS_CONTACT_NOTICE_DAYS
from distnet.settings import Settings

BATCH = 5_000
MAX_BATCHES = 20


async def prune(
    session: AsyncSession, settings: Settings, *, batch: int = BATCH, max_batches: int = MAX_BATCHES
) -> dict[str, int]:
    """Rows deleted per table in this run (the job runner commits)."""
    keep = settings.housekeeping
    deleted: dict[str, int] = {}
    for table, statement, days in (
        ("outbox_event", repo.PRUNE_OUTBOX, keep.event_retention_days),
        ("processed_event", repo.PRUNE_PROCESSED, keep.event_retention_days),
        ("notification", repo.PRUNE_NOTIFICATIONS, keep.notification_retention_days),
        ("previous_contact", repo.PRUNE_PREVIOUS_CONTACTS, PREVIOUS_CONTACT_NOTICE_DAYS),
    ):
        total = 0
        for _ in range(max_batches):
            n = rowcount(await session.execute(statement, {"days": days, "batch": batch}))
            total += n
            if n < batch:
                break
        deleted[table] = total
    return deleted
