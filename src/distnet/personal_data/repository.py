"""All SQL of the owner's data export: every table that holds something about one distributor,
read by that distributor's id only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def _rows(session: AsyncSession, sql: str, distributor_id: int) -> list[Any]:
    return list(await session.execute(text(sql), {"d": distributor_id}))


async def cards(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT c.number, c.issued_at, c.frozen_at, c.cancelled_at, c.cancel_reason, n.number AS replaced_by
          FROM card c LEFT JOIN card n ON n.id = c.replaced_by_id
         WHERE c.distributor_id = :d ORDER BY c.issued_at, c.id""",
        distributor_id,
    )


async def api_keys(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT name, prefix, roles, created_at, revoked_at FROM api_key
         WHERE distributor_id = :d ORDER BY id""",
        distributor_id,
    )


async def order_rows(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT o.id, o.source, o.external_id, c.number AS card_number, o.amount, o.currency, o.category,
               o.channel, o.placed_at, o.created_at, o.refunded_amount, o.buyer_ref_enc, o.buyer_ref_hash
          FROM orders o JOIN card c ON c.id = o.card_id
         WHERE o.seller_id = :d ORDER BY o.placed_at, o.id""",
        distributor_id,
    )


async def commissions(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT id, order_id, level, rank_used, rate_bps, base, amount, reversed, status, hold_until,
               available_at, paid_at, withheld_hold_id, created_at
          FROM commission WHERE beneficiary_id = :d ORDER BY id""",
        distributor_id,
    )


async def postings(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT p.transaction_id, t.kind, a.kind AS account, a.currency, p.amount, p.commission_id, t.memo,
               p.created_at
          FROM ledger_account a
          JOIN ledger_posting p ON p.account_id = a.id
          JOIN ledger_transaction t ON t.id = p.transaction_id
         WHERE a.distributor_id = :d ORDER BY p.id""",
        distributor_id,
    )


async def balances(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT kind AS account, currency, balance FROM ledger_account
         WHERE distributor_id = :d ORDER BY currency, kind""",
        distributor_id,
    )


async def hold_ids(session: AsyncSession, distributor_id: int) -> list[int]:
    return [
        r.id
        for r in await _rows(
            session, "SELECT id FROM hold WHERE distributor_id = :d ORDER BY id", distributor_id
        )
    ]


async def appeals(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT id, hold_id, statement, evidence, status, submission_no, created_at, decided_at
          FROM appeal WHERE distributor_id = :d ORDER BY id""",
        distributor_id,
    )


async def appeal_events(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT e.appeal_id, e.at, e.actor, e.action, e.from_status, e.to_status, e.note, e.attachments
          FROM appeal_event e JOIN appeal a ON a.id = e.appeal_id
         WHERE a.distributor_id = :d ORDER BY e.id""",
        distributor_id,
    )


async def audit_entries(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT at, action, actor, actor_key_id FROM audit_log
         WHERE subject_type = 'distributor' AND subject_id = CAST(:d AS text) ORDER BY id""",
        distributor_id,
    )


async def owner_key_ids(session: AsyncSession, distributor_id: int) -> set[int]:
    return {
        r.id for r in await _rows(session, "SELECT id FROM api_key WHERE distributor_id = :d", distributor_id)
    }


async def notifications(session: AsyncSession, distributor_id: int) -> list[dict[str, Any]]:
    """Every notice on every channel, without its code or address (kept encrypted until sent)."""
    return [
        dict(r._mapping)
        for r in await _rows(
            session,
            """
        SELECT id, kind, channel, params, status, created_at, sent_at, read_at, redacted_at, last_error
          FROM notification WHERE distributor_id = :d ORDER BY id""",
            distributor_id,
        )
    ]


async def notification_preferences(session: AsyncSession, distributor_id: int) -> Any:
    rows = await _rows(
        session,
        """
        SELECT email_enabled, sms_enabled, muted_kinds FROM notification_preference
         WHERE distributor_id = :d""",
        distributor_id,
    )
    return rows[0] if rows else None


async def consents(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT purpose, document_version, channel, granted_at, withdrawn_at FROM consent
         WHERE distributor_id = :d ORDER BY id""",
        distributor_id,
    )


async def previous_contacts(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT channel, address_enc, replaced_at FROM previous_contact WHERE distributor_id = :d ORDER BY id""",
        distributor_id,
    )


async def payout_accounts(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT id, method, holder_name_enc, account_number_enc, bank_name, bank_branch, resident_id_enc, status,
               cooling_until, created_at, superseded_at
          FROM payout_account WHERE distributor_id = :d ORDER BY id""",
        distributor_id,
    )


async def payouts(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(
        session,
        """
        SELECT id, run_id, amount, tax, currency, status, tax_month, bank_reference, failure_reason, result_at,
               return_reference, return_reason, returned_at
          FROM payout_item WHERE distributor_id = :d ORDER BY id""",
        distributor_id,
    )
