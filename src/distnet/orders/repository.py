"""All SQL of orders: idempotent inserts, the per-day sales rollup, events, views."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

ORDER_IDS = "SELECT unnest(CAST(:order_ids AS bigint[]))"
"""The order set of single orders and batches (an import uses its own temporary table)."""

_COLUMNS = (
    "source", "external_id", "body_hash", "card_id", "seller_id", "amount", "currency", "category",
    "channel", "placed_at", "buyer_ref_hash", "buyer_device_hash", "buyer_ip_hash", "buyer_payment_hash",
)
_TYPES = (
    "text", "text", "bytea", "bigint", "bigint", "bigint", "text", "text",
    "text", "timestamptz", "bytea", "bytea", "bytea", "bytea",
)


async def insert_orders(session: AsyncSession, rows: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """Insert, skipping (source, external_id) already present; returns (id, source, external_id) of
    the new rows. A concurrent insert of the same key waits for the other transaction and then
    skips, so concurrent duplicates create exactly one order."""
    if not rows:
        return []
    # same key order in every transaction: overlapping concurrent batches then wait on each other
    # at the unique index instead of deadlocking
    rows = sorted(rows, key=lambda r: (r["source"], r["external_id"]))
    arrays = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(_COLUMNS, _TYPES, strict=True))
    result = await session.execute(
        text(
            f"""
            INSERT INTO orders ({", ".join(_COLUMNS)})
            SELECT * FROM unnest({arrays})
            ON CONFLICT (source, external_id) DO NOTHING
            RETURNING id, source, external_id
            """
        ),
        {c: [r[c] for r in rows] for c in _COLUMNS},
    )
    return [(r[0], r[1], r[2]) for r in result]


async def existing_orders(session: AsyncSession, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, bytes]]:
    if not keys:
        return {}
    result = await session.execute(
        text(
            """
            SELECT o.id, o.source, o.external_id, o.body_hash FROM orders o
              JOIN unnest(CAST(:sources AS text[]), CAST(:ids AS text[])) k(source, external_id)
                ON o.source = k.source AND o.external_id = k.external_id
            """
        ),
        {"sources": [k[0] for k in keys], "ids": [k[1] for k in keys]},
    )
    return {(r.source, r.external_id): (r.id, bytes(r.body_hash)) for r in result}


SALES_ROLLUP = """
WITH s AS (
    SELECT seller_id, (placed_at AT TIME ZONE 'UTC')::date AS day, sum({amount})::bigint AS amt
      FROM orders WHERE id IN ({orders}) GROUP BY 1, 2
)
INSERT INTO sales_delta (distributor_id, day, personal, team)
SELECT seller_id, day, amt, 0 FROM s
UNION ALL
SELECT c.ancestor_id, s.day, 0, s.amt FROM s JOIN distributor_closure c ON c.descendant_id = s.seller_id
"""


async def add_sales(session: AsyncSession, orders: str, params: dict[str, Any], amount_sql: str = "amount") -> None:
    """Credit the orders' amounts (or ``amount_sql``, e.g. a negative refund) to the sellers'
    personal sales and every ancestor's team sales, on the order's day. Append-only
    (``sales_delta``): concurrent ingests never wait on each other's rows."""
    await session.execute(text(SALES_ROLLUP.format(orders=orders, amount=amount_sql)), params)


async def emit_order_created(session: AsyncSession, orders: str, params: dict[str, Any]) -> None:
    await session.execute(
        text(
            f"""
            INSERT INTO outbox_event (id, topic, distributor_id, payload)
            SELECT gen_random_uuid(), 'order.created', o.seller_id,
                   jsonb_build_object('order_id', o.id, 'card_number', c.number, 'seller_id', o.seller_id,
                                      'amount', (o.amount / 100)::text || '.' || lpad((o.amount % 100)::text, 2, '0'),
                                      'currency', o.currency, 'placed_at', o.placed_at)
              FROM orders o JOIN card c ON c.id = o.card_id
             WHERE o.id IN ({orders})
             ORDER BY o.id
            """
        ),
        params,
    )


async def commissions_of(session: AsyncSession, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = await session.execute(
        text(
            """
            SELECT c.id, c.order_id, c.level, c.beneficiary_id, c.rate_bps, c.rank_used, c.base, c.amount,
                   c.reversed, c.status, c.hold_until, c.withheld_hold_id, p.version AS plan_version
              FROM commission c JOIN commission_plan p ON p.id = c.plan_id
             WHERE c.order_id = ANY(CAST(:ids AS bigint[])) ORDER BY c.order_id, c.level
            """
        ),
        {"ids": order_ids},
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r.order_id, []).append(dict(r._mapping))
    return found


async def orders_by_id(session: AsyncSession, order_ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = await session.execute(
        text(
            """
            SELECT o.id, o.source, o.external_id, c.number AS card_number, o.seller_id, o.amount, o.currency,
                   o.category, o.channel, o.placed_at, o.created_at, o.refunded_amount
              FROM orders o JOIN card c ON c.id = o.card_id
             WHERE o.id = ANY(CAST(:ids AS bigint[]))
            """
        ),
        {"ids": order_ids},
    )
    return {r.id: dict(r._mapping) for r in rows}
