"""One log line when a dependency (Redis, PostgreSQL) goes away, one when it is back, and an
exponential backoff between attempts in between.

A periodic caller (the scheduler firing a job every 2 s, the outbox relay) would otherwise log a
warning, or a whole traceback, on every attempt for as long as the outage lasts. ``Outage`` keeps
the state of one dependency as seen by one caller: the first failure logs a line naming the error
and the next attempt, later failures log nothing (debug only) and double the wait up to a cap, and
the first success after failures logs how long it was down and how many attempts failed.

Not thread-safe on purpose: each caller owns its own (the scheduler on its event loop, the relay
per process under a lock of its own).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Outage:
    what: str
    """What is unreachable, as the log line names it ("Redis (broker)")."""
    logger: logging.Logger
    first_backoff: float = 1.0
    max_backoff: float = 10.0
    clock: Callable[[], float] = time.monotonic
    down_since: float | None = None
    failures: int = 0
    backoff: float = 0.0
    next_attempt: float = 0.0
    outages: int = field(default=0)
    """How many outages this caller has seen (for tests and metrics)."""

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def should_attempt(self) -> bool:
        """False while backing off after a failure: the caller skips this attempt."""
        return self.down_since is None or self.clock() >= self.next_attempt

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        self.failures += 1
        if self.down_since is None:
            self.down_since = now
            self.outages += 1
            self.backoff = self.first_backoff
            self.logger.warning(
                "%s unreachable (%s: %s); retrying with backoff up to %.0fs, quiet until it is back",
                self.what,
                type(exc).__name__,
                _one_line(exc),
                self.max_backoff,
            )
        else:
            self.backoff = min(self.backoff * 2, self.max_backoff)
            self.logger.debug(
                "%s still unreachable (%s); next attempt in %.1fs", self.what, _one_line(exc), self.backoff
            )
        self.next_attempt = now + self.backoff

    def succeeded(self) -> float | None:
        """Record a success; the outage's length in seconds if one just ended, else None."""
        if self.down_since is None:
            return None
        lasted = self.clock() - self.down_since
        self.logger.info(
            "%s reachable again after %.1fs (%d failed attempts)", self.what, lasted, self.failures
        )
        self.down_since = None
        self.failures = 0
        self.backoff = 0.0
        self.next_attempt = 0.0
        return lasted


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."
