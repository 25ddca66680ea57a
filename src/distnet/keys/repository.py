"""All SQL of API key rotation and recovery."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def revoke(session: AsyncSession, *, distributor_id: int, key_id: int | None) -> list[tuple[int, str]]:
    """Revoke the distributor's live key ``key_id`` (or, with None, all of their live keys);
    returns (id, prefix) of each revoked key."""
    rows = await session.execute(
        text(
            """
        UPDATE api_key SET revoked_at = now()
         WHERE distributor_id = :d AND revoked_at IS NULL AND (CAST(:k AS bigint) IS NULL OR id = :k)
        RETURNING id, prefix
        """
        ),
        {"d": distributor_id, "k": key_id},
    )
    return [(r.id, r.prefix) for r in rows]


async def distributor_with_verified_contact(
    session: AsyncSession, *, code: str, phone_hash: bytes | None, email_hash: bytes | None
) -> int | None:
    return await session.scalar(
        text(
            """
        SELECT id FROM distributor
         WHERE code = :code AND status IN ('active', 'closing')
           AND ((phone_verified_at IS NOT NULL AND phone_hash = :phone)
                OR (email_verified_at IS NOT NULL AND email_hash = :email))
        """
        ),
        {"code": code, "phone": phone_hash, "email": email_hash},
    )
