"""API keys and the principal a key stands for: create, list, revoke, resolve.

No web framework here: ``distnet keys ...`` imports only this, the models and the database layer.
The request guard that uses it is :mod:`distnet.kit.auth`."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.errors import NotFound, ValidationFailed
from distnet.models import ApiKey, Staff


class Role(StrEnum):
    distributor = "distributor"
    risk_reviewer = "risk_reviewer"
    risk_admin = "risk_admin"
    finance = "finance"
    finance_approver = "finance_approver"
    admin = "admin"


STAFF = frozenset({Role.risk_reviewer, Role.risk_admin, Role.finance, Role.finance_approver, Role.admin})
RISK_STAFF = frozenset({Role.risk_reviewer, Role.risk_admin})
FINANCE_STAFF = frozenset({Role.finance, Role.finance_approver})


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int | None
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    distributor_id: int | None = None
    staff_id: int | None = None
    """The person holding the key (staff keys made with ``distnet staff``)."""

    @property
    def authenticated(self) -> bool:
        return self.key_id is not None

    def has(self, *roles: str) -> bool:
        return Role.admin in self.roles or any(r in self.roles for r in roles)

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF)

    @property
    def actor(self) -> str:
        """Who acted, as stored in audit rows and ``*_by`` columns: the person for staff keys
        (``staff:<id>:<name>``, the same whichever of their keys they used), else the key."""
        if self.staff_id is not None:
            return f"staff:{self.staff_id}:{self.name}"
        return f"key:{self.key_id}:{self.name}" if self.key_id else "system"

    def is_person(self, actor: str | None) -> bool:
        """Whether a stored actor string names the same person as this principal: four eyes and
        conflict-of-interest checks compare people, not keys (one person may hold two keys)."""
        if not actor or not self.authenticated:
            return False
        if self.staff_id is not None:
            return actor.startswith(f"staff:{self.staff_id}:")
        return actor.startswith(f"key:{self.key_id}:")


ANONYMOUS = Principal(key_id=None, name="anonymous")
SYSTEM = Principal(key_id=None, name="system", roles=frozenset({Role.admin}))


def hash_key(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def new_key() -> tuple[str, str]:
    prefix = secrets.token_hex(4)
    return f"dn_{prefix}_{secrets.token_urlsafe(32)}", prefix


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    roles: list[str],
    distributor_id: int | None = None,
    staff_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Returns the stored key and the raw secret, which is shown once and never stored."""
    bad = [r for r in roles if r not in Role.__members__]
    if not roles or bad:
        raise ValidationFailed(f"unknown role(s): {', '.join(bad) or '(none given)'}", field="roles")
    raw, prefix = new_key()
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=hash_key(raw),
        roles=sorted(set(roles)),
        distributor_id=distributor_id,
        staff_id=staff_id,
    )
    session.add(key)
    await session.flush()
    return key, raw


async def principal_for(session: AsyncSession, raw: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiKey, Staff.name, Staff.disabled_at)
            .outerjoin(Staff, Staff.id == ApiKey.staff_id)
            .where(ApiKey.key_hash == hash_key(raw), ApiKey.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    return principal_of(row[0], row[1], row[2])


def principal_of(key: ApiKey, staff_name: str | None, staff_disabled_at: object) -> Principal | None:
    if key.staff_id is not None and staff_disabled_at is not None:
        return None  # a person who left: all their keys stop at once
    name = staff_name if key.staff_id is not None and staff_name else key.name
    return Principal(key.id, name, frozenset(key.roles), key.distributor_id, key.staff_id)


async def list_keys(session: AsyncSession, *, include_revoked: bool = False) -> list[ApiKey]:
    """Every key, oldest first (the hash is all that is stored: a key cannot be shown again)."""
    query = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(await session.scalars(query))


async def revoke_key(session: AsyncSession, *, key_id: int) -> datetime:
    """Revoke key ``key_id`` (idempotent: revoking again keeps the first time). Servers that cached
    the key stop accepting it within ``kit.auth.PRINCIPAL_TTL`` seconds."""
    revoked_at = await session.scalar(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now()))
        .returning(ApiKey.revoked_at)
    )
    if revoked_at is None:
        raise NotFound(f"no API key {key_id}")
    return revoked_at
