"""HTTP plumbing shared by every controller: the request-scoped session (commit on 2xx, roll back
otherwise), the principal and settings dependencies, and JSON conversion of money/time."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

from litestar import Request
from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Principal, resolve_principal
from distnet.kit.errors import DistnetError
from distnet.kit.ratelimit import RateLimiter, parse_limits
from distnet.kit.unit_of_work import committed, request_session
from distnet.settings import Settings


async def _resolve_in_turn(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    """``KwargsModel.resolve_dependencies``, one dependency after another. Litestar resolves the
    dependencies of one level concurrently, in an anyio task group: a task per dependency on
    every request (session, principal, settings), 5% of a single order's server CPU (issue 19).
    Ours never wait on each other, so in turn they give the same values without the tasks; the
    first error is raised as the task group raised it."""
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


KwargsModel.resolve_dependencies = _resolve_in_turn  # type: ignore[method-assign]


async def provide_session(request: Request) -> AsyncGenerator[AsyncSession, None]:
    """The request owns its unit of work: commit when the handler succeeds, roll back otherwise.
    The session may already hold the guard's key lookup (kit/unit_of_work): one transaction."""
    session = await request_session(request)
    try:
        yield session
    except BaseException:
        await session.rollback()
        raise
    else:
        await session.commit()
        committed(request)
    finally:
        await session.close()


async def provide_principal(request: Request) -> Principal:
    """The one principal provider: the key the role guard already resolved (cached on the request)."""
    return await resolve_principal(request)


def provide_settings(state: State) -> Settings:
    return state.settings


def provide_limiter(request: Request, state: State) -> RateLimiter:
    """Rate limits per IP and per person (kit/ratelimit.py) on the app's Redis client."""
    settings: Settings = state.settings
    return RateLimiter(
        state.redis,
        prefix=settings.notify.redis_prefix,
        limits=parse_limits(settings.notify.rate_limits),
        ip=request.client.host if request.client else None,
    )


DEPENDENCIES: dict[str, Provide] = {
    "session": Provide(provide_session),
    "principal": Provide(provide_principal),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "limiter": Provide(provide_limiter, sync_to_thread=False),
}


def roles(
    *names: str, raises: Iterable[type[DistnetError]] = (), files: Iterable[str] = ()
) -> dict[str, Any]:
    """A route's ``opt``: the roles that may call it (admin always may), the domain problems it can
    raise and the download media types it can answer with (kit/contract documents them)."""
    return {"roles": frozenset(names), "raises": tuple(raises), "files": tuple(files)}


def public(*, raises: Iterable[type[DistnetError]] = (), files: Iterable[str] = ()) -> dict[str, Any]:
    """A route anyone may call (a key, if given, must be valid)."""
    return {"public": True, "raises": tuple(raises), "files": tuple(files)}


PUBLIC: dict[str, Any] = public()
