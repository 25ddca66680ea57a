from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class SettlementCreate(msgspec.Struct, forbid_unknown_fields=True):
    as_of: datetime | None = None
    """Settle what was due at this time (default: now); never in the future."""
    partitions: Annotated[int, msgspec.Meta(ge=1, le=1024)] | None = None
