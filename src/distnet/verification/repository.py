"""All SQL of one-time codes (``verification.service``)."""

from __future__ import annotations

from sqlalchemy import text

LOCKED_UNTIL = text(
    """
    SELECT max(locked_until) FROM verification_code
     WHERE distributor_id = :d AND purpose = :p AND locked_until > now()
    """
)


VERIFIED_CONTACT = text(
    """
    SELECT CASE WHEN phone_verified_at IS NOT NULL THEN phone_enc END,
           CASE WHEN email_verified_at IS NOT NULL THEN email_enc END
      FROM distributor WHERE id = :d
    """
)


LOCK_ISSUER = text("SELECT pg_advisory_xact_lock(hashtext('verification_code'), hashtext(:k))")


SUPERSEDE_LIVE_CODES = text(
    """
    UPDATE verification_code SET superseded_at = now()
     WHERE distributor_id = :d AND purpose = :p AND used_at IS NULL AND superseded_at IS NULL
    """
)


INSERT_CODE = text(
    """
    INSERT INTO verification_code (distributor_id, purpose, channel, destination_enc, code_hash, expires_at)
    VALUES (:d, :p, :channel, :dest, :hash, :expires) RETURNING id
    """
)


LOCK_LIVE_CODE = text(
    """
    SELECT id, channel, destination_enc, code_hash, expires_at, attempts FROM verification_code
     WHERE distributor_id = :d AND purpose = :p AND used_at IS NULL AND superseded_at IS NULL
     ORDER BY id DESC LIMIT 1 FOR UPDATE
    """
)


RECORD_WRONG_ATTEMPT = text(
    """
    UPDATE verification_code SET attempts = :a, locked_until = :lock,
           superseded_at = CASE WHEN CAST(:lock AS timestamptz) IS NOT NULL THEN now() END
     WHERE id = :id
    """
)


USE_CODE = text("UPDATE verification_code SET used_at = now(), attempts = attempts + 1 WHERE id = :id")
