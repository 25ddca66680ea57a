"""SQL of notifications: the fan-out INSERT … SELECT, the inbox page, due deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, text
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


async def fan_out(
    session: AsyncSession, *, recipients: str, params: dict[str, Any], event_key: str, kind: str, payload: str
) -> int:
    """One statement for any number of recipients (``recipients`` selects distributor ids), all
    with the same event key and parameters."""
    rows = f"SELECT x.id, CAST(:event_key AS varchar), CAST(:params AS jsonb) FROM ({recipients}) AS x (id)"
    result = await session.execute(
        text(_FANOUT.format(rows=rows)),
        {
            **params,
            "event_key": event_key,
            "kind": kind,
            "params": payload,
            "mandatory": kind in MANDATORY_KINDS,
        },
    )
    return rowcount(result)


async def fan_out_rows(session: AsyncSession, *, rows: str, params: dict[str, Any], kind: str) -> int:
    """One statement for recipients that each have their own event key and parameters: ``rows``
    selects ``(distributor id, event key, params jsonb)``."""
    result = await session.execute(
        text(_FANOUT.format(rows=rows)), {**params, "kind": kind, "mandatory": kind in MANDATORY_KINDS}
    )
    return rowcount(result)


async def inbox_page(
    session: AsyncSession, distributor_id: int, *, before_id: int | None, limit: int, unread_only: bool
) -> list[dict[str, Any]]:
    rows = await session.execute(
        text("""
        SELECT id, kind, params, created_at, read_at, redacted_at, secret_enc
          FROM notification
         WHERE distributor_id = :d AND channel = 'inbox'
           AND (CAST(:before AS bigint) IS NULL OR id < :before)
           AND (NOT :unread OR read_at IS NULL)
         ORDER BY id DESC LIMIT :limit
    """),
        {"d": distributor_id, "before": before_id, "limit": limit, "unread": unread_only},
    )
    return [dict(r._mapping) for r in rows]


async def unread_count(session: AsyncSession, distributor_id: int) -> int:
    return int(
        await session.scalar(
            text(
                "SELECT count(*) FROM notification WHERE distributor_id = :d AND channel = 'inbox' AND read_at IS NULL"
            ),
            {"d": distributor_id},
        )
        or 0
    )


async def mark_read(session: AsyncSession, distributor_id: int, notification_id: int) -> bool:
    found = await session.execute(
        text("""
        UPDATE notification SET read_at = coalesce(read_at, now())
         WHERE id = :id AND distributor_id = :d AND channel = 'inbox' RETURNING id
    """),
        {"id": notification_id, "d": distributor_id},
    )
    return found.first() is not None


async def claim_due(session: AsyncSession, *, limit: int, stale_minutes: int) -> list[int]:
    """Pending deliveries not queued yet (or queued long ago and still pending: a lost message),
    stamped in one statement; SKIP LOCKED so a send in progress is left alone."""
    rows = await session.scalars(
        text("""
        UPDATE notification SET queued_at = now()
         WHERE id IN (SELECT id FROM notification
                       WHERE status = 'pending'
                         AND (queued_at IS NULL OR queued_at < now() - make_interval(mins => :stale))
                       ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING id
    """),
        {"limit": limit, "stale": stale_minutes},
    )
    return sorted(rows)


INSERT_SECRET_NOTICE = text(
    """
    INSERT INTO notification (distributor_id, event_key, kind, channel, params, secret_enc, destination_enc,
                              status, sent_at)
    VALUES (:d, :key, :kind, :channel, CAST(:params AS jsonb), :secret, :dest, :status,
            CASE WHEN CAST(:sent AS boolean) THEN now() END)
    """
)


FORGET_SECRETS = text("UPDATE notification SET secret_enc = NULL WHERE event_key = :k")


NOTIFY_PREVIOUS_CONTACTS = text(
    """
    INSERT INTO notification (distributor_id, event_key, kind, channel, params, destination_enc, status)
    SELECT DISTINCT ON (pc.channel, pc.address_hash)
           pc.distributor_id, CAST(:key AS varchar) || ':previous:' || pc.id, CAST(:kind AS varchar), pc.channel,
           CAST(:params AS jsonb), pc.address_enc, 'pending'
      FROM previous_contact pc JOIN distributor d ON d.id = pc.distributor_id
     WHERE pc.distributor_id = :d AND pc.address_enc IS NOT NULL AND d.status <> 'erased'
       AND (CASE WHEN CAST(:only AS bigint) IS NULL
                 THEN pc.replaced_at >= now() - make_interval(days => :days)
                 ELSE pc.id = CAST(:only AS bigint) END)
       AND pc.address_hash IS DISTINCT FROM (CASE pc.channel WHEN 'email' THEN d.email_hash ELSE d.phone_hash END)
     ORDER BY pc.channel, pc.address_hash, pc.replaced_at DESC
    ON CONFLICT ON CONSTRAINT uq_notification_event_recipient_channel DO NOTHING
    """
)


LOCALE = text("SELECT locale FROM distributor WHERE id = :d")


PREFERENCES = text(
    "SELECT email_enabled, sms_enabled, muted_kinds FROM notification_preference WHERE distributor_id = :d"
)


UPSERT_PREFERENCES = text(
    """
    INSERT INTO notification_preference (distributor_id, email_enabled, sms_enabled, muted_kinds, updated_at)
    VALUES (:d, :e, :s, CAST(:m AS varchar[]), now())
    ON CONFLICT (distributor_id) DO UPDATE SET email_enabled = excluded.email_enabled,
           sms_enabled = excluded.sms_enabled, muted_kinds = excluded.muted_kinds, updated_at = now()
    """
)


FINISH_DELIVERY = text(
    """
    UPDATE notification SET status = CAST(:status AS varchar),
           provider = coalesce(CAST(:provider AS varchar), provider), last_error = CAST(:reason AS text),
           attempts = attempts + CASE WHEN CAST(:attempted AS boolean) THEN 1 ELSE 0 END,
           sent_at = CASE WHEN CAST(:status AS varchar) = 'sent' THEN now() ELSE sent_at END,
           secret_enc = CASE WHEN CAST(:status AS varchar) = 'pending' THEN secret_enc END
     WHERE id = :id
    """
)


LOAD_FOR_DELIVERY = text("""
    SELECT n.id, n.kind, n.channel, n.params, n.secret_enc, n.destination_enc, n.status, n.attempts,
           n.redacted_at, d.locale, d.status AS distributor_status,
           CASE WHEN d.email_verified_at IS NOT NULL THEN d.email_enc END AS email_enc,
           CASE WHEN d.phone_verified_at IS NOT NULL THEN d.phone_enc END AS phone_enc
      FROM notification n JOIN distributor d ON d.id = n.distributor_id
     WHERE n.id = :id
       FOR UPDATE OF n
""")


def redact(distributor_ids: str) -> TextClause:
    """Erasure of the notices of the distributors ``distributor_ids`` (a query of their ids)."""
    return text(f"""
        UPDATE notification SET params = '{{}}'::jsonb, secret_enc = NULL, destination_enc = NULL,
               redacted_at = now(), status = CASE WHEN status = 'pending' THEN 'skipped' ELSE status END
         WHERE distributor_id IN ({distributor_ids}) AND redacted_at IS NULL
    """)


def at_risk_of_downgrade(sales: str) -> str:
    """Rows (distributor id, event key, params) of the rank downgrade warning
    (``reminders.warn_downgrades``); ``sales``: the daily sales relation (``ranks.service.SALES``)."""
    return f"""
WITH ladder AS (
    SELECT * FROM unnest(CAST(:ranks AS text[]), CAST(:positions AS int[]), CAST(:min_personal AS bigint[]),
                         CAST(:min_team AS bigint[])) AS l (rank, pos, min_personal, min_team)
), held AS (
    SELECT d.id, d.rank, l.pos, l.min_personal, l.min_team FROM distributor d JOIN ladder l ON l.rank = d.rank
     WHERE d.status = 'active' AND l.pos > 0
), kept AS (
    SELECT h.id, h.rank, h.pos, h.min_personal, h.min_team,
           coalesce(sum(s.personal), 0) AS personal, coalesce(sum(s.team), 0) AS team
      FROM held h LEFT JOIN {sales} s
        ON s.distributor_id = h.id
       AND s.day > (now() AT TIME ZONE 'UTC')::date - CAST(:days AS int) + CAST(:ahead AS int)
     GROUP BY h.id, h.rank, h.pos, h.min_personal, h.min_team
), falling AS (
    SELECT DISTINCT ON (k.id) k.*, l.rank AS to_rank
      FROM kept k JOIN ladder l ON k.personal >= l.min_personal AND k.team >= l.min_team
     ORDER BY k.id, l.pos DESC
)
SELECT f.id, 'rank_warning:' || f.id || ':' || f.rank || ':' || CAST(:week AS text),
       jsonb_build_object('rank', f.rank, 'to', f.to_rank, 'days', CAST(:ahead AS int),
                          'evaluate_on', CAST(:evaluate_on AS text),
                          'needed', concat_ws(' + ',
                              CASE WHEN f.personal < f.min_personal
                                   THEN to_char((f.min_personal - f.personal) / 100.0, 'FM999999999990.00') || ' personal' END,
                              CASE WHEN f.team < f.min_team
                                   THEN to_char((f.min_team - f.team) / 100.0, 'FM999999999990.00') || ' team' END))
  FROM falling f JOIN ladder cur ON cur.rank = f.rank
 WHERE (SELECT pos FROM ladder WHERE rank = f.to_rank) < cur.pos
"""


APPEAL_STEP_NOTE = text(
    "SELECT note FROM appeal_event WHERE appeal_id = :a AND (CAST(:e AS bigint) IS NULL OR id = :e) "
    "ORDER BY id DESC LIMIT 1"
)


ERASE_AFTER = text("SELECT erase_after FROM distributor WHERE id = :d")


WINDOW_SCOPE = "SELECT distributor_id FROM hold WHERE maintenance_window_id = CAST(:window_id AS bigint)"


CONTACT_STATE = text(
    """
    SELECT EXISTS (SELECT 1 FROM consent WHERE distributor_id = :d AND purpose = 'sms' AND withdrawn_at IS NULL),
           email_verified_at IS NOT NULL AND email_enc IS NOT NULL,
           phone_verified_at IS NOT NULL AND phone_enc IS NOT NULL
      FROM distributor WHERE id = :d
    """
)
