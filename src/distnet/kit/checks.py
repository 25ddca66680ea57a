"""The shape of a money invariant check (``ledger verify``): each domain lists its own checks
(a ``checks`` section at the end of ``ledger/repository.py`` and
``payouts/repository.py``) and the ledger runs them all."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    description: str
    sql: str
    """Selects the offending rows; the check passes when it selects none."""
