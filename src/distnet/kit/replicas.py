"""Read replicas: read-only requests and reports go to a streaming replica that is not too far
behind; everything else, and whatever a replica cannot answer, stays on the primary.

A handler opts in with ``opt=READ_ONLY`` (network reads, reports: kit/unit_of_work opens the
request's session on a replica). Per request, the chosen replica's connection first answers one
statement: how far its replay is behind. A replica that has replayed all it received counts 0
whatever the time of its last transaction (an idle primary sends nothing); otherwise the age of
the last replayed transaction. Beyond ``DISTNET_REPLICA_MAX_LAG_SECONDS`` the request goes to the
primary. A replica that cannot be reached is left alone for :data:`RETRY_DOWN_SECONDS` (its
requests go to the primary meanwhile), so an outage costs latency, not errors.

Read-after-write: a request that writes always runs on the primary (only handlers marked
READ_ONLY go elsewhere), and a key that wrote through this process reads from the primary for
the next ``max lag`` seconds (:meth:`ReplicaSet.wrote`), so a client sees its own write; across
API processes, the bound is the replica's lag (at most the setting)."""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from distnet.kit import repository

log = logging.getLogger(__name__)

READ_ONLY: dict[str, Any] = {"read_only": True}
RETRY_DOWN_SECONDS = 5.0


@dataclass
class Replica:
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    down_until: float = 0.0


@dataclass
class ReplicaSet:
    replicas: list[Replica]
    max_lag: float
    routed: dict[str, int] = field(default_factory=lambda: {"replica": 0, "lagging": 0, "down": 0})
    """Read-only requests by where they went (tests and /metrics read it)."""
    _writers: dict[bytes, float] = field(default_factory=dict)
    _turn: itertools.count = field(default_factory=itertools.count)

    def wrote(self, key_id: bytes | None) -> None:
        """A request with this key (its digest) committed a write: its reads stay on the primary
        for a while."""
        if key_id is not None:
            if len(self._writers) > 10_000:
                self._writers.clear()
            self._writers[key_id] = time.monotonic() + self.max_lag

    def recently_wrote(self, key_id: bytes | None) -> bool:
        until = self._writers.get(key_id) if key_id is not None else None
        return until is not None and until > time.monotonic()

    async def session(self) -> AsyncSession | None:
        """A session on a replica whose lag is within bounds (its transaction already begun on
        the checked connection), or None: use the primary."""
        now = time.monotonic()
        start = next(self._turn)
        for i in range(len(self.replicas)):
            replica = self.replicas[(start + i) % len(self.replicas)]
            if replica.down_until > now:
                continue
            session = replica.sessionmaker()
            try:
                lag = float((await session.execute(repository.REPLICA_LAG)).scalar_one())
            except Exception as exc:  # noqa: BLE001 - any failure to reach it: fall back, never fail the read
                await _discard(session)
                replica.down_until = time.monotonic() + RETRY_DOWN_SECONDS
                self.routed["down"] += 1
                log.warning(
                    "replica %s unreachable (%s); reads go to the primary for %.0fs",
                    replica.engine.url.render_as_string(hide_password=True),
                    type(exc).__name__,
                    RETRY_DOWN_SECONDS,
                )
                continue
            if lag <= self.max_lag:
                self.routed["replica"] += 1
                return session
            self.routed["lagging"] += 1
            await session.close()
        return None

    async def dispose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()


async def _discard(session: AsyncSession) -> None:
    try:
        await session.close()
    except Exception:  # noqa: BLE001 - the connection is already broken
        pass
