from __future__ import annotations

from datetime import datetime

import msgspec


class IssuedKey(msgspec.Struct):
    """A new API key: ``api_key`` is shown this once and stored only as its SHA-256."""

    api_key: str
    prefix: str
    roles: list[str]
    created_at: datetime
    revoked_prefixes: list[str]
    """The keys this one replaces; they stop working at once in this process and within
    ``kit.auth.PRINCIPAL_TTL`` seconds (5) in every other API process."""
