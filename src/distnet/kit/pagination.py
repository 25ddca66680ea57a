"""Cursor pagination: opaque base64 cursors over a tuple of sort keys."""

from __future__ import annotations

import base64
import json
from typing import Any

from distnet.kit.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def encode_cursor(*keys: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(keys), default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        keys = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("cursor is not valid", field="cursor") from exc
    if not isinstance(keys, list) or len(keys) != arity:
        raise ValidationFailed("cursor is not valid", field="cursor")
    return keys


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
