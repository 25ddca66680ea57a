"""Request rate limits shared by every process (Redis fixed windows), per IP and per person.

``RateLimiter.hit("code_send", ip=..., person=...)`` counts one attempt in each window that applies
and raises :class:`RateLimited` (429 with ``Retry-After``) once a window is full. Keys are
``<prefix>:rl:<action>:<ip|person>:<who>``; the prefix (``DISTNET_REDIS_PREFIX``) keeps processes of
other deployments and parallel test runs on one Redis apart. The same counter paces the sending
providers (:meth:`RateLimiter.take`).

Limits: ``DEFAULT_LIMITS``, overridden by ``DISTNET_RATE_LIMITS`` (``register.ip=20/3600,...``) or
switched off with ``DISTNET_RATE_LIMITS=off``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from distnet.kit.errors import DistnetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    seconds: int


DEFAULT_LIMITS: dict[str, Limit] = {
    "register.ip": Limit(30, 3600),
    "code_send.ip": Limit(30, 3600),
    "code_send.person": Limit(5, 900),
    "code_check.ip": Limit(120, 3600),
    "code_check.person": Limit(30, 3600),
    # key recovery is public: per IP, and per account (referral code) so a stranger cannot flood
    # one owner's phone; confirmations get their own, looser window
    "key_recovery.ip": Limit(10, 3600),
    "key_recovery.person": Limit(5, 3600),
    "key_recovery_check.ip": Limit(30, 3600),
    "key_recovery_check.person": Limit(10, 3600),
}


class RateLimited(DistnetError):
    status = 429
    code = "rate-limited"
    title = "Too many requests"


def parse_limits(spec: str) -> dict[str, Limit]:
    """``DEFAULT_LIMITS`` with the overrides of ``spec``; ``off`` means no limits."""
    if spec.strip().lower() == "off":
        return {}
    limits = dict(DEFAULT_LIMITS)
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        count, _, seconds = value.partition("/")
        limits[name.strip()] = Limit(int(count), int(seconds or 60))
    return limits


class RateLimiter:
    def __init__(
        self, redis: aioredis.Redis | None, *, prefix: str, limits: dict[str, Limit], ip: str | None = None
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limits = limits
        self.ip = ip

    async def _count(self, key: str, seconds: int) -> tuple[int, int]:
        assert self.redis is not None
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=seconds, nx=True)
            pipe.incr(key)
            pipe.ttl(key)
            _, count, ttl = await pipe.execute()
        return int(count), int(ttl)

    async def hit(self, action: str, *, person: object | None = None, ip: str | None = None) -> None:
        """Count one ``action`` for this IP and this person; 429 when either window is full."""
        if self.redis is None:
            return
        for scope, who in (("ip", ip or self.ip), ("person", person)):
            limit = self.limits.get(f"{action}.{scope}")
            if limit is None or who is None:
                continue
            try:
                count, ttl = await self._count(f"{self.prefix}:rl:{action}:{scope}:{who}", limit.seconds)
            except RedisError:
                # Fail open: a Redis outage must not stop registrations and codes (the attempt limit
                # of each code still holds, in PostgreSQL).
                logger.warning("rate limit store unavailable; %s not limited", action)
                return
            if count > limit.count:
                retry = max(ttl, 1)
                raise RateLimited(
                    f"too many {action.replace('_', ' ')} requests; retry in {retry} s",
                    extra={"retry_after": retry},
                    headers={"Retry-After": str(retry)},
                )

    async def take(self, bucket: str, per_minute: int) -> float | None:
        """One send from ``bucket`` (a provider); None if allowed, else seconds to wait."""
        if self.redis is None or per_minute <= 0:
            return None
        count, ttl = await self._count(f"{self.prefix}:send:{bucket}", 60)
        return None if count <= per_minute else float(max(ttl, 1))
