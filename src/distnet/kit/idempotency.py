"""Idempotency-Key for money-moving POSTs: a replay returns the first response; the same key with a
different body is a 409. Concurrent first requests serialise on the key's row: the second
``INSERT ... ON CONFLICT`` waits for the first transaction, then sees its stored response."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.errors import IdempotencyConflict, ValidationFailed
from distnet.models import IdempotencyRecord

PENDING = -1


def request_hash(body: Any) -> bytes:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    response: dict[str, Any]


async def claim(session: AsyncSession, scope: str, key: str | None, body: Any) -> Replay | None:
    """Reserve ``key`` for this request, or return the stored first response."""
    if key is None:
        return None
    if not (1 <= len(key) <= 200):
        raise ValidationFailed("Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key")
    digest = request_hash(body)
    inserted = await session.scalar(
        insert(IdempotencyRecord)
        .values(scope=scope, key=key, request_hash=digest, status_code=PENDING, response={})
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    )
    if inserted is not None:
        return None
    record = await session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    )
    assert record is not None
    if record.request_hash != digest:
        raise IdempotencyConflict("this Idempotency-Key was used with a different request body")
    return Replay(200, record.response)


async def store(session: AsyncSession, scope: str, key: str | None, status_code: int, response: Any) -> None:
    if key is None:
        return
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
        .values(status_code=status_code, response=json.loads(json.dumps(response, default=str)))
    )


__all__ = ["claim", "store", "Replay", "request_hash", "text"]
