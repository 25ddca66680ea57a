"""All SQL of a distributor's profile: contact data, locale, consents and the payout contact
condition."""

from __future__ import annotations

from sqlalchemy import TextClause, text

CONTACT_COLUMNS = ("phone", "email")


SET_EMAIL = text("UPDATE distributor SET email_enc = :e, email_hash = :h WHERE id = :d")


PROFILE = text(
    """
    SELECT locale, phone_enc, phone_verified_at, email_enc, email_verified_at FROM distributor WHERE id = :d
    """
)


LOCALE = text("SELECT locale FROM distributor WHERE id = :d")


SET_LOCALE = text("UPDATE distributor SET locale = :l WHERE id = :d")


INSERT_PREVIOUS_CONTACT = text(
    """
    INSERT INTO previous_contact (distributor_id, channel, address_enc, address_hash)
    VALUES (:d, :c, :enc, :hash) RETURNING id
    """
)


GRANT_CONSENT = text(
    """
    INSERT INTO consent (distributor_id, purpose, document_version, channel)
    SELECT CAST(:d AS bigint), CAST(:p AS varchar), CAST(:v AS varchar), CAST(:c AS varchar)
     WHERE NOT EXISTS (SELECT 1 FROM consent WHERE distributor_id = CAST(:d AS bigint)
                         AND purpose = CAST(:p AS varchar) AND withdrawn_at IS NULL)
    """
)


CONSENTS = text(
    """
    SELECT purpose, document_version, channel, granted_at, withdrawn_at FROM consent
     WHERE distributor_id = :d ORDER BY id
    """
)


WITHDRAW_CONSENT = text(
    """
    UPDATE consent SET withdrawn_at = now() WHERE distributor_id = :d AND purpose = :p AND withdrawn_at IS NULL
    """
)


def lock_contact(column: str) -> TextClause:
    """The distributor's current phone or e-mail (encrypted, hash, verified time), row locked."""
    assert column in CONTACT_COLUMNS  # a column name, never input
    return text(f"""
        SELECT {column}_enc AS enc, {column}_hash AS hash, {column}_verified_at AS verified_at
          FROM distributor WHERE id = :d FOR UPDATE
    """)


def set_verified_contact(column: str) -> TextClause:
    assert column in CONTACT_COLUMNS  # a column name, never input
    return text(f"""
        UPDATE distributor SET {column}_enc = :enc, {column}_hash = :hash, {column}_verified_at = now()
         WHERE id = :d
    """)


# SQL over ``distributor d``: a verified phone or e-mail, or a payout already paid (the first payout
# needs a verified contact when DISTNET_REQUIRE_VERIFIED_CONTACT is set)
PAYOUT_CONTACT_CONDITION = (
    "(d.phone_verified_at IS NOT NULL OR d.email_verified_at IS NOT NULL OR EXISTS "
    "(SELECT 1 FROM payout_item pi WHERE pi.distributor_id = d.id AND pi.status = 'paid'))"
)


def contact_condition_holds(condition: str) -> TextClause:
    return text(f"SELECT {condition} FROM distributor d WHERE d.id = :d")
