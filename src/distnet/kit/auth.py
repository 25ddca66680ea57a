"""API keys and the one guard mechanism.

Every route handler declares who may call it in ``opt={"roles": {...}}`` (or ``"public": True``).
The app-wide :func:`role_guard` resolves the key once per request into a :class:`Principal` and
checks it; the app runs it through :func:`authorize`, its ``before_request`` hook. Ownership
("self or staff") is checked in services with :func:`ensure_self_or_staff`, because only they know
whose resource it is.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from distnet.kit import repository
from distnet.kit.errors import Forbidden, NotFound, Unauthorized
from distnet.kit.keys import (
    ANONYMOUS,
    FINANCE_STAFF,
    RISK_STAFF,
    STAFF,
    SYSTEM,
    Principal,
    Role,
    create_key,
    hash_key,
    new_key,
    principal_for,
    principal_of,
)
from distnet.kit.pg import fetch
from distnet.kit.unit_of_work import on_replica, request_session

__all__ = [  # keys and principals live in kit.keys (no web framework: the CLI imports them fast)
    "ANONYMOUS",
    "FINANCE_STAFF",
    "RISK_STAFF",
    "STAFF",
    "SYSTEM",
    "Principal",
    "Role",
    "create_key",
    "hash_key",
    "new_key",
    "principal_for",
    "principal_of",
    "resolve_principal",
    "role_guard",
    "authorize",
    "ensure_self_or_staff",
]


# Resolved keys are cached briefly per process, so a client's next requests cost no lookup. A
# revoked key (or a disabled staff member) therefore stops working within PRINCIPAL_TTL seconds
# everywhere (at once in the process that revoked it: keys/service.py). The principal holds no
# holds or ranks: those are read by the request itself, never from this cache.
PRINCIPAL_TTL = 5.0
_principal_cache: dict[bytes, tuple[float, Principal]] = {}


async def _cached_principal(connection: ASGIConnection, raw: str) -> Principal | None:
    digest = hash_key(raw)
    now = time.monotonic()
    hit = _principal_cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    rows = await fetch(await request_session(connection), repository.KEY_LOOKUP, {"digest": digest})
    found = None
    if rows and not rows[0].staff_disabled:  # a person who left: all their keys stop at once
        key = rows[0]
        name = key.staff_name if key.staff_id is not None and key.staff_name else key.name
        found = Principal(key.id, name, frozenset(key.roles), key.distributor_id, key.staff_id)
    if found is not None:
        if len(_principal_cache) > 10_000:
            _principal_cache.clear()
        # read on a replica: what it showed may be up to its lag bound old already
        lag = connection.app.state.replicas.max_lag if on_replica(connection) else 0.0
        _principal_cache[digest] = (now + PRINCIPAL_TTL - lag, found)
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
    if openapi is not None and connection.scope["path"].startswith(openapi.path or "/schema"):
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


async def authorize(request: Request[Any, Any, Any]) -> None:
    """:func:`role_guard` as the app's ``before_request`` hook. It runs where a guard would, before
    the request's dependencies and body are read, and its errors become the same problem
    responses; Litestar calls each guard with a copy of the route handler object, which was 6%
    of a ``/health`` request's CPU (issue 19)."""
    await role_guard(request, request.route_handler)


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
