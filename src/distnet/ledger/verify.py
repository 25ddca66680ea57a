"""``distnet ledger verify`` / ``GET /ledger/verify``: every money invariant checked on a live
database, each by one read-only query that names what is wrong (up to a few examples)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.checks import Check
from distnet.ledger import repository as repo
from distnet.ledger.schemas import CheckResult, LedgerVerification
from distnet.network.checks import CHECKS as NETWORK_CHECKS  # the team aggregate (issue 19)
from distnet.payouts import repository as payouts_repo  # invariant 5 lives with payouts

EXAMPLES = 5
CHECKS: tuple[Check, ...] = (*repo.CHECKS, *payouts_repo.CHECKS, *NETWORK_CHECKS)
"""Every check ``verify`` runs: the ledger's, those of payouts (invariant 5) and of the team aggregate."""


async def verify(
    session: AsyncSession, progress: Callable[[Check], None] | None = None
) -> LedgerVerification:

    results = []
    for check in CHECKS:
        rows = (await session.execute(repo.examples(check, EXAMPLES + 1))).all()
        bad = [
            {k: (str(v) if not isinstance(v, int | str | None) else v) for k, v in r._mapping.items()}
            for r in rows
        ]
        ok = not bad
        detail = (
            check.description
            if ok
            else (
                f"{'more than ' + str(EXAMPLES) if len(bad) > EXAMPLES else len(bad)} violation(s) of: "
                f"{check.description}"
            )
        )
        results.append(CheckResult(name=check.name, ok=ok, detail=detail, examples=bad[:EXAMPLES]))
        if progress is not None:
            progress(check)
    return LedgerVerification(ok=all(r.ok for r in results), checks=results)
