"""SQL of the cards' read path: a card with its owner's active holds in one prepared statement
(issue 19: the ORM reads of the card and then of the holds were two statements and most of a
request's Python time). Writes stay in cards/service.py."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import pg

_HOLD_COLUMNS = (
    ("id", "hold_ids"),
    ("reason", "hold_reasons"),
    ("started_at", "hold_since"),
    ("ends_at", "hold_ends"),
    ("appealable", "hold_appealable"),
    ("rule_name", "hold_rules"),
    ("note", "hold_notes"),
)
HOLD_ARRAYS = ", ".join(f"hs.{name}" for _, name in _HOLD_COLUMNS)
"""The columns ``holds_lateral`` adds: one array per hold attribute, in started_at, id order."""


@functools.cache
def _active_hold() -> str:
    # the one definition of an active hold (cards.service.hold_is_active), as SQL on table "hold"
    from distnet.cards.service import hold_is_active

    return str(hold_is_active().compile(compile_kwargs={"literal_binds": True}))


def holds_lateral(owner: str, when: str = "true") -> str:
    """``LEFT JOIN LATERAL`` of the active holds of distributor ``owner`` (an SQL expression), read
    only when ``when`` holds, as arrays (``HOLD_ARRAYS``; all null without holds)."""
    order = "ORDER BY hold.started_at, hold.id"
    arrays = ", ".join(
        f"array_agg(hold.{col}{'::text' if col in ('reason', 'rule_name') else ''} {order}) AS {name}"
        for col, name in _HOLD_COLUMNS
    )
    return (
        f"LEFT JOIN LATERAL (SELECT {arrays} FROM hold WHERE hold.distributor_id = {owner} AND ({when}) "
        f"AND {_active_hold()}) hs ON true"
    )


def hold_rows(row: Any) -> list[dict[str, Any]]:
    """The holds of a row with ``HOLD_ARRAYS``, as dicts (id, reason, since, ends_at, appealable,
    rule, note)."""
    if not row.hold_ids:
        return []
    return [
        {
            "id": i,
            "reason": reason,
            "since": since,
            "ends_at": ends,
            "appealable": appealable,
            "rule": rule,
            "note": note,
        }
        for i, reason, since, ends, appealable, rule, note in zip(
            row.hold_ids,
            row.hold_reasons,
            row.hold_since,
            row.hold_ends,
            row.hold_appealable,
            row.hold_rules,
            row.hold_notes,
            strict=True,
        )
    ]


CARD_COLUMNS = (
    "c.number, c.distributor_id AS card_owner, c.issued_at, c.frozen_at, c.cancelled_at, c.cancel_reason"
)


@functools.cache
def _card_statement() -> TextClause:
    return text(
        f"SELECT {CARD_COLUMNS}, {HOLD_ARRAYS} FROM card c "
        f"{holds_lateral('c.distributor_id', 'c.cancelled_at IS NULL')} WHERE c.number = :number"
    )


async def card_with_holds(session: AsyncSession, number: str) -> Any | None:
    """The card by number with its owner's active holds (none read for a cancelled card)."""
    rows = await pg.fetch(session, _card_statement(), {"number": number})
    return rows[0] if rows else None
