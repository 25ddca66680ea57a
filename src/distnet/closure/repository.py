"""All SQL of account closure and erasure (``closure.service``)."""

from __future__ import annotations

from sqlalchemy import text

DISTRIBUTOR = text("SELECT id FROM distributor WHERE id = :d")
LOCK_DISTRIBUTOR = text("SELECT id FROM distributor WHERE id = :d FOR UPDATE")
STATUS = text("SELECT status FROM distributor WHERE id = :d")
LOCK_STATUS = text("SELECT status FROM distributor WHERE id = :d FOR UPDATE")

# the money a closing account still waits for, per account kind
WAITING = text(
    """
    SELECT kind, balance FROM ledger_account
     WHERE distributor_id = :d AND kind IN ('pending', 'available', 'reserved') AND balance > 0
     ORDER BY kind
    """
)

CLOSING_ACCOUNTS_SQL = "SELECT id FROM distributor WHERE status = 'closing'"
"""The accounts whose final payout the payout run owes whatever the minimum amount."""

LOCK_CLOSED_AMONG = text(
    "SELECT id FROM distributor WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'closed' ORDER BY id FOR UPDATE"
)

# --------------------------------------------------------------------------- erasure

LOCK_DUE_FOR_ERASURE = text(
    "SELECT id FROM distributor WHERE status = 'closed' AND erase_after <= coalesce(CAST(:now AS timestamptz), now())"
    " FOR UPDATE"
)

THE_IDS = "SELECT unnest(CAST(:ids AS bigint[]))"
"""The ids bound as ``:ids`` (erase_due), as a query."""

_ERASE = [
    # appeal statements, evidence and messages (the owner's and the reviewers' about them)
    """UPDATE appeal_event SET note = CASE WHEN note IS NULL THEN NULL ELSE '[erased]' END, attachments = '[]'::jsonb
        WHERE appeal_id IN (SELECT id FROM appeal WHERE distributor_id IN (SELECT id FROM due))""",
    """UPDATE appeal SET statement = '[erased]', evidence = '[]'::jsonb WHERE distributor_id IN (SELECT id FROM due)""",
    # audit details about the person and their appeals (who did what, and when, stays)
    """UPDATE audit_log SET before = CASE WHEN before IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END,
              after = CASE WHEN after IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END
        WHERE (subject_type = 'distributor' AND subject_id IN (SELECT id::text FROM due))
           OR (subject_type = 'appeal' AND subject_id IN
               (SELECT id::text FROM appeal WHERE distributor_id IN (SELECT id FROM due)))""",
    # published events (unpublished ones still carry work for their consumers)
    """UPDATE outbox_event SET payload = jsonb_build_object('erased', true)
        WHERE distributor_id IN (SELECT id FROM due) AND published_at IS NOT NULL""",
    """UPDATE verification_code SET destination_enc = NULL WHERE distributor_id IN (SELECT id FROM due)""",
    """DELETE FROM previous_contact WHERE distributor_id IN (SELECT id FROM due)""",
]
ERASE = [text(f"WITH due AS ({THE_IDS} AS id) {statement}") for statement in _ERASE]
"""Each runs with ``:ids``, the accounts being erased."""

ERASE_DISTRIBUTORS = text(
    """
    UPDATE distributor SET name = 'erased', erased_at = now(), status = 'erased',
           phone_enc = NULL, phone_hash = NULL, device_enc = NULL, device_hash = NULL,
           ip_enc = NULL, ip_hash = NULL, payment_enc = NULL, payment_hash = NULL,
           email_enc = NULL, email_hash = NULL, phone_verified_at = NULL,
           email_verified_at = NULL, closure_note = NULL
     WHERE id = ANY(CAST(:ids AS bigint[]))
    """
)
