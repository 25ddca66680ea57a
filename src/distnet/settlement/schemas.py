from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from distnet.kit.contract import Money


class SettlementCreate(msgspec.Struct, forbid_unknown_fields=True):
    as_of: datetime | None = None
    """Settle what was due at this time (default: now); never in the future."""
    partitions: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None


class SettlementRunView(msgspec.Struct):
    id: int
    status: str
    as_of: datetime
    moved: int
    """Commissions that became available."""
    amount: Money
    withheld: int
    """Commissions withheld instead (beneficiary under a violation hold)."""
    netted_against_debt: Money
    partitions: int
    partitions_done: int
    started_at: datetime
    finished_at: datetime | None
    triggered_by: str | None
