"""All SQL of the owner's data export: every table that holds something about one distributor,
read by that distributor's id only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def _rows(session: AsyncSession, sql: str, distributor_id: int) -> list[Any]:
    return list(await session.execute(text(sql), {"d": distributor_id}))


async def cards(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT c.number, c.issued_at, c.frozen_at, c.cancelled_at, c.cancel_reason, n.number AS replaced_by
          FROM card c LEFT JOIN card n ON n.id = c.replaced_by_id
         WHERE c.distributor_id = :d ORDER BY c.issued_at, c.id""", distributor_id)


async def api_keys(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT name, prefix, roles, created_at, revoked_at FROM api_key
         WHERE distributor_id = :d ORDER BY id""", distributor_id)


async def order_rows(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT o.id, o.source, o.external_id, c.number AS card_number, o.amount, o.currency, o.category,
               o.channel, o.placed_at, o.created_at, o.refunded_amount, o.buyer_ref_enc, o.buyer_ref_hash
          FROM orders o JOIN card c ON c.id = o.card_id
         WHERE o.seller_id = :d ORDER BY o.placed_at, o.id""", distributor_id)


async def commissions(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT id, order_id, level, rank_used, rate_bps, base, amount, reversed, status, hold_until,
               available_at, paid_at, withheld_hold_id, created_at
          FROM commission WHERE beneficiary_id = :d ORDER BY id""", distributor_id)


async def postings(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT p.transaction_id, t.kind, a.kind AS account, a.currency, p.amount, p.commission_id, t.memo,
               p.created_at
          FROM ledger_account a
          JOIN ledger_posting p ON p.account_id = a.id
          JOIN ledger_transaction t ON t.id = p.transaction_id
         WHERE a.distributor_id = :d ORDER BY p.id""", distributor_id)


async def balances(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT kind AS account, currency, balance FROM ledger_account
         WHERE distributor_id = :d ORDER BY currency, kind""", distributor_id)


async def hold_ids(session: AsyncSession, distributor_id: int) -> list[int]:
    return [r.id for r in await _rows(session, "SELECT id FROM hold WHERE distributor_id = :d ORDER BY id",
                                      distributor_id)]


async def appeals(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT id, hold_id, statement, evidence, status, submission_no, created_at, decided_at
          FROM appeal WHERE distributor_id = :d ORDER BY id""", distributor_id)


async def appeal_events(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT e.appeal_id, e.at, e.actor, e.action, e.from_status, e.to_status, e.note, e.attachments
          FROM appeal_event e JOIN appeal a ON a.id = e.appeal_id
         WHERE a.distributor_id = :d ORDER BY e.id""", distributor_id)


async def audit_entries(session: AsyncSession, distributor_id: int) -> list[Any]:
    return await _rows(session, """
        SELECT at, action, actor, actor_key_id FROM audit_log
         WHERE subject_type = 'distributor' AND subject_id = CAST(:d AS text) ORDER BY id""", distributor_id)


async def owner_key_ids(session: AsyncSession, distributor_id: int) -> set[int]:
    return {r.id for r in await _rows(session, "SELECT id FROM api_key WHERE distributor_id = :d", distributor_id)}


# Tables of other domains (notifications, consents) read when they exist, so that the export grows
# with them: (section, table, the column naming the distributor). One-time codes are left out: a
# code's salted hash is a security record, not information about the person.
OPTIONAL_TABLES = (
    ("notifications", "notification", "distributor_id"),
    ("notifications", "notification_preference", "distributor_id"),
    ("consents", "consent", "distributor_id"),
)


async def optional_rows(session: AsyncSession, table: str, column: str, distributor_id: int) -> list[dict[str, Any]]:
    """Every row of ``table`` whose ``column`` is the distributor, as JSON objects without their
    binary columns (ciphertexts and hashes); nothing when the table or column does not exist."""
    columns = {r.column_name: r.data_type for r in await session.execute(text(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :t"), {"t": table})}
    if column not in columns:
        return []
    binary = [name for name, kind in columns.items() if kind == "bytea"]
    # table and column names come from OPTIONAL_TABLES and the catalog, never from the request
    rows = await session.execute(text(
        f'SELECT to_jsonb(x) - CAST(:binary AS text[]) AS row FROM "{table}" x WHERE x."{column}" = :d ORDER BY 1'),
        {"d": distributor_id, "binary": binary})
    return [dict(r.row) for r in rows]
