"""Periodic jobs: what runs, how often, and the async service function that does it.

A job's target is the import path of ``async def fn(session, settings)`` (``settings`` may be left
out of the signature) that does one idempotent unit of work and never commits: the runner owns
the transaction (invariant 8: running a job twice, or after a crash, is harmless). A target may
also be a dramatiq actor (``distnet.settlement.tasks.run``): it is then sent, for work that fans
out over several workers.

Targets are resolved lazily at run time: a domain that has not landed yet is skipped (logged once),
so this list names every job now. The scheduler (one leader, scheduler.py) fires each job by
enqueueing ``worker.run_job(name)``; in-process runs (``--inline``) call :func:`run_job` directly.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dramatiq
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.db import session_scope
from distnet.kit.metrics import JOB_SECONDS
from distnet.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    interval: timedelta
    target: str
    """Import path ``package.module.function`` (or of a dramatiq actor)."""
    run_at_start: bool = False
    """Fire once as soon as the scheduler becomes leader (else first after one interval)."""


JOBS: list[Job] = [
    Job("outbox_relay", timedelta(seconds=2), "distnet.events.relay.relay_job", run_at_start=True),
    Job("erase_personal_data", timedelta(days=1), "distnet.network.service.erase_due_personal_data"),
    Job("purge_tax_identities", timedelta(days=1), "distnet.network.service.purge_expired_tax_identities"),
    # owned by other domains; skipped until their function exists
    Job("settlement", timedelta(hours=1), "distnet.settlement.service.run_settlement"),
    Job("risk_scan", timedelta(minutes=15), "distnet.risk.service.scan"),
    Job("maintenance_windows", timedelta(seconds=30), "distnet.risk.maintenance.tick", run_at_start=True),
    Job("forfeit_withheld", timedelta(hours=1), "distnet.risk.holds.forfeit_due"),
    Job("appeal_claim_expiry", timedelta(minutes=1), "distnet.risk.appeals.release_stale_claims"),
    Job("rank_evaluation", timedelta(days=1), "distnet.ranks.service.evaluate_ranks"),
    Job("fold_sales", timedelta(seconds=30), "distnet.ranks.service.fold_sales"),
    Job("fold_team", timedelta(seconds=30), "distnet.network.repository.fold_team"),
    Job("notifications_send", timedelta(seconds=5), "distnet.notifications.tasks.queue_due"),
    Job("prune", timedelta(minutes=10), "distnet.events.housekeeping.prune"),
    Job("rank_downgrade_warnings", timedelta(days=1), "distnet.notifications.reminders.warn_downgrades"),
    # daily: each pays at most once per member and month / lot (issue 18)
    Job("points_monthly_grant", timedelta(days=1), "distnet.points.service.grant_monthly", run_at_start=True),
    Job("points_expiry", timedelta(hours=1), "distnet.points.service.expire_due"),
    Job("points_expiry_notices", timedelta(days=1), "distnet.points.service.notify_expiring"),
]


def jobs_by_name(jobs: list[Job] | None = None) -> dict[str, Job]:
    return {job.name: job for job in (JOBS if jobs is None else jobs)}


_MISSING_LOGGED: set[str] = set()


def resolve(target: str) -> Any | None:
    """The object at ``target``, or None when its module or attribute does not exist (yet)."""
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except ModuleNotFoundError as exc:
        # Only "not written yet" is skipped; a broken import inside an existing module is a bug.
        if exc.name is None or not module_name.startswith(exc.name):
            raise
    except AttributeError:
        pass
    if target not in _MISSING_LOGGED:
        _MISSING_LOGGED.add(target)
        logger.warning("job target %s does not exist yet; skipping it", target)
    return None


def _wants_settings(fn: Any) -> bool:
    try:
        return "settings" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


async def run_job(
    name: str,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    jobs: list[Job] | None = None,
) -> Any:
    """Run job ``name`` once in its own transaction; returns what the function returned (None if
    skipped). Unknown job names raise KeyError."""
    job = jobs_by_name(jobs)[name]
    target = resolve(job.target)
    if target is None:
        return None
    if isinstance(target, dramatiq.Actor):
        target.send()
        logger.info("job %s: sent %s", name, target.actor_name)
        return None
    started = time.monotonic()
    async with session_scope(sessionmaker) as session:
        result = await (target(session, settings=settings) if _wants_settings(target) else target(session))
    elapsed = time.monotonic() - started
    JOB_SECONDS.labels(name).observe(elapsed)
    # a periodic job that found nothing to do (most runs of the 2 s outbox relay) logs nothing at INFO
    log = logger.info if elapsed > 1 or did_something(result) else logger.debug
    log("job %s done in %.2fs: %s", name, elapsed, _summary(result))
    return result


def did_something(result: Any) -> bool:
    """Whether a job's result reports work: a non-zero count, a non-empty collection, a truthy
    value; a dataclass or dict when any of its values does."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return any(did_something(v) for v in dataclasses.asdict(result).values())
    if isinstance(result, dict):
        return any(did_something(v) for v in result.values())
    return bool(result)


def _summary(result: Any) -> str:
    text = repr(result)
    return text if len(text) <= 200 else text[:197] + "..."
