"""API keys and the one guard mechanism.

Every route handler declares who may call it in ``opt={"roles": {...}}`` (or ``"public": True``).
The app-wide :func:`role_guard` resolves the key once per request into a :class:`Principal` and
checks it. Ownership ("self or staff") is checked in services with :func:`ensure_self_or_staff`,
because only they know whose resource it is.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
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
    session: AsyncSession, *, name: str, roles: list[str], distributor_id: int | None = None,
    staff_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Returns the stored key and the raw secret, which is shown once and never stored."""
    bad = [r for r in roles if r not in Role.__members__]
    if not roles or bad:
        raise ValidationFailed(f"unknown role(s): {', '.join(bad) or '(none given)'}", field="roles")
    raw, prefix = new_key()
    key = ApiKey(name=name, prefix=prefix, key_hash=hash_key(raw), roles=sorted(set(roles)),
                 distributor_id=distributor_id, staff_id=staff_id)
    session.add(key)
    await session.flush()
    return key, raw


async def principal_for(session: AsyncSession, raw: str) -> Principal | None:
    row = (await session.execute(
        select(ApiKey, Staff.name, Staff.disabled_at).outerjoin(Staff, Staff.id == ApiKey.staff_id)
        .where(ApiKey.key_hash == hash_key(raw), ApiKey.revoked_at.is_(None))
    )).first()
    if row is None:
        return None
    return principal_of(row[0], row[1], row[2])


def principal_of(key: ApiKey, staff_name: str | None, staff_disabled_at: object) -> Principal | None:
    if key.staff_id is not None and staff_disabled_at is not None:
        return None  # a person who left: all their keys stop at once
    name = staff_name if key.staff_id is not None and staff_name else key.name
    return Principal(key.id, name, frozenset(key.roles), key.distributor_id, key.staff_id)


# Resolved keys are cached briefly per process: a lookup per request would be a database round
# trip on every call. A revoked key therefore stops working within PRINCIPAL_TTL seconds.
PRINCIPAL_TTL = 5.0
_principal_cache: dict[bytes, tuple[float, Principal]] = {}


async def _cached_principal(connection: ASGIConnection, raw: str) -> Principal | None:
    digest = hash_key(raw)
    now = time.monotonic()
    hit = _principal_cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    async with connection.app.state.sessionmaker() as session:
        found = await principal_for(session, raw)
    if found is not None:
        if len(_principal_cache) > 10_000:
            _principal_cache.clear()
        _principal_cache[digest] = (now + PRINCIPAL_TTL, found)
    return found


async def resolve_principal(connection: ASGIConnection) -> Principal:
    cached = connection.scope.get("state", {}).get("principal")
    if cached is not None:
        return cached
    header = connection.headers.get("authorization")
    principal = ANONYMOUS
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("use 'Authorization: Bearer <api key>'")
        found = await _cached_principal(connection, raw.strip())
        if found is None:
            raise Unauthorized("unknown or revoked API key")
        principal = found
    connection.state.principal = principal
    return principal


async def role_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide guard: reads the handler's ``roles`` option; ``public`` handlers need no key."""
    openapi = connection.app.openapi_config
    if openapi is not None and connection.scope["path"].startswith(openapi.path):
        return  # the API description is public
    if handler.opt.get("console"):
        return  # the console's own guard: its session cookie, never the Authorization header
    principal = await resolve_principal(connection)
    if handler.opt.get("public"):
        return
    roles: frozenset[str] = frozenset(handler.opt.get("roles", ()))
    if not principal.authenticated:
        raise Unauthorized()
    if not principal.has(*roles):
        raise Forbidden(f"requires one of the roles: {', '.join(sorted(roles))}")


def ensure_self_or_staff(principal: Principal, distributor_id: int, *staff: str) -> None:
    """A distributor sees only their own resources; others get 404 (never the data)."""
    if principal.distributor_id == distributor_id:
        return
    allowed = staff or tuple(STAFF)
    if principal.has(*allowed):
        return
    if principal.roles & STAFF:
        raise Forbidden("your role may not see this distributor's data")
    raise NotFound("no such distributor")


async def provide_principal(request) -> Principal:  # Litestar dependency
    return await resolve_principal(request)
