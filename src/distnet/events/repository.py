"""All SQL of events: the outbox relay, consumers' processed-event markers, and housekeeping."""

from __future__ import annotations

from sqlalchemy import text

# --------------------------------------------------------------------------- housekeeping
# Pruning statements (``housekeeping.prune``): each deletes one batch of old rows.

# seq order: old published rows sit at the start of the unique seq index, so a batch stops early
PRUNE_OUTBOX = text("""
    DELETE FROM outbox_event WHERE id IN (
        SELECT id FROM outbox_event
         WHERE published_at < now() - make_interval(days => :days)
         ORDER BY seq LIMIT :batch FOR UPDATE SKIP LOCKED)
""")


PRUNE_PROCESSED = text("""
    DELETE FROM processed_event p USING (
        SELECT consumer, event_id FROM processed_event
         WHERE processed_at < now() - make_interval(days => :days)
         ORDER BY processed_at LIMIT :batch FOR UPDATE SKIP LOCKED) old
     WHERE p.consumer = old.consumer AND p.event_id = old.event_id
""")


PRUNE_NOTIFICATIONS = text("""
    DELETE FROM notification WHERE id IN (
        SELECT id FROM notification
         WHERE status = 'sent' AND channel <> 'inbox' AND sent_at < now() - make_interval(days => :days)
         ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
""")


# a replaced phone or e-mail is only used for notices during the window after its replacement
PRUNE_PREVIOUS_CONTACTS = text("""
    DELETE FROM previous_contact WHERE id IN (
        SELECT id FROM previous_contact
         WHERE replaced_at < now() - make_interval(days => :days)
         ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)
""")


# --------------------------------------------------------------------------- relay and dispatch

UNPUBLISHED_BATCH = text(
    """
    SELECT id, topic, payload, distributor_id, created_at, request_id
      FROM outbox_event
     WHERE published_at IS NULL
     ORDER BY seq
     LIMIT :limit
       FOR UPDATE SKIP LOCKED
    """
)


MARK_PUBLISHED = text(
    "UPDATE outbox_event SET published_at = now(), attempts = attempts + 1, last_error = NULL "
    "WHERE id = ANY(:ids)"
)


RECORD_REFUSAL = text("UPDATE outbox_event SET attempts = attempts + 1, last_error = :error WHERE id = :id")


CLAIM_EVENT = text(
    "INSERT INTO processed_event (consumer, event_id) VALUES (:consumer, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
