"""SQL of notifications: the fan-out INSERT … SELECT, the inbox page, due deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import rowcount
from distnet.notifications.templates import MANDATORY_KINDS

# Which channels a recipient gets: the inbox always; e-mail to a verified address unless turned
# off or the kind is muted (``:mandatory`` kinds, ``templates.MANDATORY_KINDS``, ignore mutes); SMS
# to a verified phone only with an active ``sms`` consent (seed 003: short messages are opt-in).
# Erased accounts get nothing.
_FANOUT = """
INSERT INTO notification (distributor_id, event_key, kind, channel, params, status, sent_at)
SELECT d.id, r.event_key, CAST(:kind AS varchar), ch.channel, r.params,
       CASE WHEN ch.channel = 'inbox' THEN 'sent' ELSE 'pending' END,
       CASE WHEN ch.channel = 'inbox' THEN now() END
  FROM ({rows}) AS r (id, event_key, params)
  JOIN distributor d ON d.id = r.id
  CROSS JOIN (VALUES ('inbox'), ('email'), ('sms')) AS ch (channel)
  LEFT JOIN notification_preference p ON p.distributor_id = d.id
 WHERE d.status <> 'erased'
   AND (ch.channel = 'inbox'
        OR (ch.channel = 'email' AND d.email_enc IS NOT NULL AND d.email_verified_at IS NOT NULL
            AND coalesce(p.email_enabled, true)
            AND (CAST(:mandatory AS boolean) OR NOT (CAST(:kind AS varchar) = ANY (coalesce(p.muted_kinds, '{{}}')))))
        OR (ch.channel = 'sms' AND d.phone_enc IS NOT NULL AND d.phone_verified_at IS NOT NULL
            AND coalesce(p.sms_enabled, true)
            AND (CAST(:mandatory AS boolean) OR NOT (CAST(:kind AS varchar) = ANY (coalesce(p.muted_kinds, '{{}}'))))
            AND EXISTS (SELECT 1 FROM consent c WHERE c.distributor_id = d.id AND c.purpose = 'sms'
                                                  AND c.withdrawn_at IS NULL)))
ON CONFLICT ON CONSTRAINT uq_notification_event_recipient_channel DO NOTHING
"""


async def fan_out(session: AsyncSession, *, recipients: str, params: dict[str, Any], event_key: str,
                  kind: str, payload: str) -> int:
    """One statement for any number of recipients (``recipients`` selects distributor ids), all
    with the same event key and parameters."""
    rows = (f"SELECT x.id, CAST(:event_key AS varchar), CAST(:params AS jsonb) "
            f"FROM ({recipients}) AS x (id)")
    result = await session.execute(text(_FANOUT.format(rows=rows)),
                                   {**params, "event_key": event_key, "kind": kind, "params": payload,
                                    "mandatory": kind in MANDATORY_KINDS})
    return rowcount(result)


async def fan_out_rows(session: AsyncSession, *, rows: str, params: dict[str, Any], kind: str) -> int:
    """One statement for recipients that each have their own event key and parameters: ``rows``
    selects ``(distributor id, event key, params jsonb)``."""
    result = await session.execute(text(_FANOUT.format(rows=rows)),
                                   {**params, "kind": kind, "mandatory": kind in MANDATORY_KINDS})
    return rowcount(result)


async def inbox_page(session: AsyncSession, distributor_id: int, *, before_id: int | None, limit: int,
                     unread_only: bool) -> list[dict[str, Any]]:
    rows = await session.execute(text("""
        SELECT id, kind, params, created_at, read_at, redacted_at, secret_enc
          FROM notification
         WHERE distributor_id = :d AND channel = 'inbox'
           AND (CAST(:before AS bigint) IS NULL OR id < :before)
           AND (NOT :unread OR read_at IS NULL)
         ORDER BY id DESC LIMIT :limit
    """), {"d": distributor_id, "before": before_id, "limit": limit, "unread": unread_only})
    return [dict(r._mapping) for r in rows]


async def unread_count(session: AsyncSession, distributor_id: int) -> int:
    return int(await session.scalar(text(
        "SELECT count(*) FROM notification WHERE distributor_id = :d AND channel = 'inbox' AND read_at IS NULL"),
        {"d": distributor_id}) or 0)


async def mark_read(session: AsyncSession, distributor_id: int, notification_id: int) -> bool:
    found = await session.execute(text("""
        UPDATE notification SET read_at = coalesce(read_at, now())
         WHERE id = :id AND distributor_id = :d AND channel = 'inbox' RETURNING id
    """), {"id": notification_id, "d": distributor_id})
    return found.first() is not None


async def claim_due(session: AsyncSession, *, limit: int, stale_minutes: int) -> list[int]:
    """Pending deliveries not queued yet (or queued long ago and still pending: a lost message),
    stamped in one statement; SKIP LOCKED so a send in progress is left alone."""
    rows = await session.scalars(text("""
        UPDATE notification SET queued_at = now()
         WHERE id IN (SELECT id FROM notification
                       WHERE status = 'pending'
                         AND (queued_at IS NULL OR queued_at < now() - make_interval(mins => :stale))
                       ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING id
    """), {"limit": limit, "stale": stale_minutes})
    return sorted(rows)
