"""All SQL of orders: idempotent inserts, the per-day sales rollup, events, views, refunds."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards.service import hold_is_active
from distnet.commissions.repository import attribute_sql
from distnet.kit import pg
from distnet.kit.outbox import insert_events, statement
from distnet.ledger.service import PLATFORM_ACCOUNTS
from distnet.models import Card, Hold, Order, Refund
from distnet.points import repository as points_repo
from distnet.ranks.service import LADDER_CTES, SALES, change_ctes

ORDER_IDS = "SELECT unnest(CAST(:order_ids AS bigint[]))"
"""The order set of single orders and batches (an import uses its own temporary table)."""

_COLUMNS = (
    "source",
    "external_id",
    "body_hash",
    "card_id",
    "seller_id",
    "amount",
    "currency",
    "category",
    "channel",
    "placed_at",
    "buyer_ref_hash",
    "buyer_device_hash",
    "buyer_ip_hash",
    "buyer_payment_hash",
    "buyer_ref_enc",
)
_TYPES = (
    "text",
    "text",
    "bytea",
    "bigint",
    "bigint",
    "bigint",
    "text",
    "text",
    "text",
    "timestamptz",
    "bytea",
    "bytea",
    "bytea",
    "bytea",
    "bytea",
)


_INSERT_ORDERS = text(
    f"""
    INSERT INTO orders ({", ".join(_COLUMNS)})
    SELECT {
        ", ".join(
            f"decode(r.{c}, 'base64')" if t == "bytea" else f"r.{c}"
            for c, t in zip(_COLUMNS, _TYPES, strict=True)
        )
    }
      FROM json_to_recordset(CAST(:rows AS json))
           AS r({
        ", ".join(f"{c} {'text' if t == 'bytea' else t}" for c, t in zip(_COLUMNS, _TYPES, strict=True))
    })
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING id, source, external_id, created_at
    """
)


def order_rows_json(rows: list[dict[str, Any]]) -> str:
    """Order rows as the JSON document the insert reads (bytes as base64, times as RFC 3339)."""
    return msgspec.json.encode(rows).decode()


async def insert_orders(session: AsyncSession, rows: list[dict[str, Any]]) -> list[tuple[int, str, str, Any]]:
    """Insert, skipping (source, external_id) already present; returns (id, source, external_id,
    created_at) of the new rows. A concurrent insert of the same key waits for the other transaction and then
    skips, so concurrent duplicates create exactly one order."""
    if not rows:
        return []
    # same key order in every transaction: overlapping concurrent batches then wait on each other
    # at the unique index instead of deadlocking
    rows = sorted(rows, key=lambda r: (r["source"], r["external_id"]))
    # one JSON document (msgspec: bytes as base64, times as RFC 3339) instead of 14 arrays: psycopg
    # dumps a 1,000-element array in Python, about 70 ms of a batch's 14
    result = await pg.fetch(session, _INSERT_ORDERS, {"rows": order_rows_json(rows)})
    return [(r[0], r[1], r[2], r[3]) for r in result]


@dataclass(frozen=True, slots=True)
class SingleLookup:
    card: Card | None
    seller_status: str | None
    held: bool
    """The seller has an active hold (read the holds to answer why)."""
    existing: tuple[int, bytes] | None
    """(id, body hash) of the order already stored under this (source, external_id)."""
    ready: bool
    """A commission plan, the currency's platform accounts and a benefit catalogue exist."""


# One statement: the card and its seller, whether the seller has an active hold, the order already
# stored under the key, whether a plan, the currency's platform accounts and a benefit catalogue
# exist. The single order's session runs it and the order's own statement on a connection whose
# statements use generic plans (kit/unit_of_work ONE_STATEMENT): a plan prepared once spares
# re-planning the attribution CTE on every order (2.3 of its 3 ms; PostgreSQL's own choice kept
# custom plans).
_ACTIVE_HOLD = str(hold_is_active().compile(compile_kwargs={"literal_binds": True}))
_LOOKUP_SINGLE = text(
    f"""
    SELECT c.id, c.number, c.distributor_id, c.frozen_at, c.cancelled_at, d.status,
           EXISTS (SELECT 1 FROM hold WHERE hold.distributor_id = c.distributor_id AND {_ACTIVE_HOLD}) AS held,
           o.id AS order_id, o.body_hash,
           EXISTS (SELECT 1 FROM commission_plan) AS has_plan,
           (SELECT count(*) FROM ledger_account
             WHERE distributor_id IS NULL AND currency = :currency) >= :platform_accounts AS platform_ready,
           EXISTS (SELECT 1 FROM benefit_catalogue) AS has_catalogue
      FROM (SELECT 1) one
      LEFT JOIN card c ON c.number = :card_number
      LEFT JOIN distributor d ON d.id = c.distributor_id
      LEFT JOIN orders o ON o.source = :source AND o.external_id = :external_id
    """
)


async def lookup_single(
    session: AsyncSession, card_number: str, key: tuple[str, str], currency: str
) -> SingleLookup:
    """Everything a single order needs to know before its insert, in one query. The card is a row
    with the attributes of ``Card`` that selling reads (id, number, distributor_id, frozen_at,
    cancelled_at)."""
    (r,) = await pg.fetch(
        session,
        _LOOKUP_SINGLE,
        {
            "card_number": card_number,
            "source": key[0],
            "external_id": key[1],
            "currency": currency,
            "platform_accounts": len(PLATFORM_ACCOUNTS),
        },
    )
    return SingleLookup(
        card=None if r.id is None else r,
        seller_status=r.status,
        held=bool(r.held),
        existing=None if r.order_id is None else (r.order_id, bytes(r.body_hash)),
        ready=bool(r.has_plan and r.platform_ready and r.has_catalogue),
    )


_EXISTING_ORDERS = text(
    """
    SELECT o.id, o.source, o.external_id, o.body_hash FROM orders o
      JOIN unnest(CAST(:sources AS text[]), CAST(:ids AS text[])) k(source, external_id)
        ON o.source = k.source AND o.external_id = k.external_id
    """
)


async def existing_orders(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, bytes]]:
    if not keys:
        return {}
    result = await pg.fetch(
        session,
        _EXISTING_ORDERS,
        {"sources": pg.text_array([k[0] for k in keys]), "ids": pg.text_array([k[1] for k in keys])},
    )
    return {(r.source, r.external_id): (r.id, bytes(r.body_hash)) for r in result}


_SALES_BY_DAY = """
    SELECT seller_id, distnet_local_day(placed_at) AS day, sum({amount})::bigint AS amt
      FROM {rows} GROUP BY 1, 2"""
# reads the per-day sums as CTE ``s``
_SALES_INSERT = """INSERT INTO sales_delta (distributor_id, day, personal, team)
SELECT seller_id, day, amt, 0 FROM s
UNION ALL
SELECT c.ancestor_id, s.day, 0, s.amt FROM s JOIN distributor_closure c ON c.descendant_id = s.seller_id"""
SALES_ROLLUP = f"WITH s AS ({_SALES_BY_DAY})\n{_SALES_INSERT}"


async def add_sales(
    session: AsyncSession, orders: str, params: dict[str, Any], amount_sql: str = "amount"
) -> None:
    """Credit the orders' amounts (or ``amount_sql``, e.g. a negative refund) to the sellers'
    personal sales and every ancestor's team sales, on the order's day. Append-only
    (``sales_delta``): concurrent ingests never wait on each other's rows."""
    await session.execute(text(SALES_ROLLUP.format(rows=_rows_of(orders), amount=amount_sql)), params)


_ORDER_CREATED = insert_events(
    topic="order.created",
    source="{rows} JOIN card c ON c.id = o.card_id",
    distributor_id="o.seller_id",
    order_by="o.id",
    payload="""jsonb_build_object('order_id', o.id, 'card_number', c.number, 'seller_id', o.seller_id,
                          'amount', (o.amount / 100)::text || '.' || lpad((o.amount % 100)::text, 2, '0'),
                          'currency', o.currency, 'placed_at', o.placed_at)""",
)


def _rows_of(orders: str) -> str:
    return f"(SELECT * FROM orders WHERE id IN ({orders})) o"


@functools.lru_cache(maxsize=8)
def _sales_and_events(orders: str) -> TextClause:
    by_day = _SALES_BY_DAY.format(rows=_rows_of(orders), amount="amount")
    events = _ORDER_CREATED.format(rows=_rows_of(orders)).strip()
    # two data-modifying statements: the CTE runs whatever the final statement reads
    return statement(f"WITH e AS ({events} RETURNING 1), s AS ({by_day})\n{_SALES_INSERT}")


async def add_sales_and_events(session: AsyncSession, orders: str, params: dict[str, Any]) -> None:
    """The sales credit and the ``order.created`` events of new orders, in one statement."""
    await pg.fetch(session, _sales_and_events(orders), params)


# The rank upgrade of a single order, in the order's own statement: the seller and its stored
# nearest uplines (the scope of ranks.upgrade_after_orders), on their sales over the ladder's period
# as this statement sees them plus the new order's own credit (a statement does not see its own
# inserts: the seller's personal, the uplines' team sales), moved up where they now qualify, with
# the audit row and ``rank.changed`` event of ranks.apply_ranks (``LADDER_CTES``' ``:days``,
# ``:ranks``, ``:min_personal``, ``:min_team`` its default). The check in a statement of its own
# would also see credits committed meanwhile by concurrent orders; missing those is the race every
# upgrade check has (both orders' checks can miss each other's uncommitted credit): the periodic
# evaluation applies such an upgrade.
_RANK_UPGRADE = (
    LADDER_CTES
    + """, rank_scope AS (
    -- the seller and its stored nearest uplines, each by its key (a join condition with a
    -- correlated IN scanned every distributor under the generic plan)
    SELECT d.id, d.rank, m.own,
           CASE WHEN distnet_local_day(n.placed_at) > distnet_local_day(now()) - (SELECT period_days FROM cfg)
                THEN n.amount ELSE 0 END AS credit
      FROM new_order n
     CROSS JOIN LATERAL (SELECT n.seller_id AS id, true AS own
                         UNION ALL
                         SELECT u.ancestor_id, false FROM distributor_upline u WHERE u.distributor_id = n.seller_id) m
      JOIN distributor d ON d.id = m.id AND d.status = 'active'
), rank_totals AS (
    SELECT r.id, r.rank,
           coalesce(sum(t.personal), 0) + CASE WHEN r.own THEN max(r.credit) ELSE 0 END AS personal,
           coalesce(sum(t.team), 0) + CASE WHEN r.own THEN 0 ELSE max(r.credit) END AS team
      FROM rank_scope r LEFT JOIN """
    + SALES
    + """ t ON t.distributor_id = r.id AND t.day > distnet_local_day(now()) - (SELECT period_days FROM cfg)
     GROUP BY r.id, r.rank, r.own
), """
    + change_ctes("rank_totals", prefix="rank_", downgrades="false", reason="'threshold_crossed'")
)


# The order's points in the same statement, as points.service.earn_for_orders writes them (their
# own ledger transaction, in PTS), at the rank after the order's own upgrade (benefits are
# instant). ``:expiry_months`` as earn_for_orders passes it.
_POINTS = points_repo.earn_ctes(
    "new_order o",
    "true",
    kind="'points.earned'",
    ref_type="'order_points'",
    ref_id="(SELECT id::text FROM new_order)",
    new_ranks="rank_changed",
)


def _single_statement() -> TextClause:
    """One order's insert, attribution (commissions and their ledger transaction), sales credit,
    ``order.created`` event, rank upgrades and points in one statement: the new row reaches the
    others through the ``new_order`` CTE (a statement does not see its own inserts in the table).
    Whole on its own: it needs no transaction around it (orders.ingest.create_order)."""

    # VALUES, not the JSON document of batches: the planner must know it is one row (a set-returning
    # function counts as 100, and the generic plan then hash-joins whole tables)
    insert = (
        f"INSERT INTO orders ({', '.join(_COLUMNS)}) VALUES ("
        + ", ".join(f"CAST(:{c} AS {t})" for c, t in zip(_COLUMNS, _TYPES, strict=True))
        + ") ON CONFLICT (source, external_id) DO NOTHING"
        " RETURNING id, seller_id, card_id, amount, refunded_amount, currency, category, placed_at, created_at"
    )
    by_day = _SALES_BY_DAY.format(rows="new_order", amount="amount")
    events = _ORDER_CREATED.format(rows="new_order o").strip()
    return statement(
        attribute_sql(
            "",
            aggregate=False,
            before=f"new_order AS ({insert}), ",
            order_rows="SELECT id, seller_id, amount, currency, category, placed_at FROM new_order",
            after=f", s AS ({by_day}), sales AS ({_SALES_INSERT} RETURNING 1), events AS ({events} RETURNING 1), "
            + _RANK_UPGRADE
            + ", "
            + _POINTS,
            columns="(SELECT id FROM new_order) AS new_order_id, (SELECT created_at FROM new_order) AS new_order_created_at, "
            "(SELECT json_agg(json_build_object('id', id, 'old_rank', old_rank, 'new_rank', new_rank) ORDER BY id) "
            "FROM rank_changed) AS rank_changes, " + points_repo.EARNED_COLUMNS + ", ",
            ref_id="(SELECT id::text FROM new_order)",
        )
    )


SINGLE = _single_statement()


async def commissions_of(session: AsyncSession, order_ids: list[int]) -> dict[int, list[Any]]:
    """The orders' commissions, rows with the attributes of orders.views.commission_view."""
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
    found: dict[int, list[Any]] = {}
    for r in rows:
        found.setdefault(r.order_id, []).append(r)
    return found


async def points_of(session: AsyncSession, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The points lots the orders earned (the seller's, a sponsor's referral), as earned."""
    rows = await session.execute(
        text(
            "SELECT order_id, distributor_id, source, amount AS points FROM points_lot "
            "WHERE order_id = ANY(CAST(:ids AS bigint[])) ORDER BY order_id, id"
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
                   o.category, o.channel, o.placed_at, o.created_at, o.refunded_amount,
                   o.buyer_ref_enc, o.buyer_ref_hash
              FROM orders o JOIN card c ON c.id = o.card_id
             WHERE o.id = ANY(CAST(:ids AS bigint[]))
            """
        ),
        {"ids": order_ids},
    )
    return {r.id: dict(r._mapping) for r in rows}


STATUS_FILTERS = {
    "completed": "o.refunded_amount = 0",
    "partially_refunded": "o.refunded_amount > 0 AND o.refunded_amount < o.amount",
    "refunded": "o.refunded_amount = o.amount",
}


async def seller_orders_page(
    session: AsyncSession,
    seller_id: int,
    *,
    placed_from: Any,
    placed_to: Any,
    status: str | None,
    after: tuple[Any, int] | None,
    limit: int,
) -> list[Any]:
    """A seller's orders, newest first, by (placed_at, id) keyset: a range scan of
    ix_orders_seller_placed however many orders the seller has."""
    where = ["o.seller_id = :seller"]
    params: dict[str, Any] = {"seller": seller_id, "limit": limit}
    if placed_from is not None:
        where.append("o.placed_at >= :placed_from")
        params["placed_from"] = placed_from
    if placed_to is not None:
        where.append("o.placed_at < :placed_to")
        params["placed_to"] = placed_to
    if status is not None:
        where.append(STATUS_FILTERS[status])
    if after is not None:
        where.append("(o.placed_at, o.id) < (:after_at, :after_id)")
        params.update(after_at=after[0], after_id=after[1])
    rows = await session.execute(
        text(
            f"""
        SELECT o.id, o.source, o.external_id, c.number AS card_number, o.amount, o.currency, o.category,
               o.channel, o.placed_at, o.created_at, o.refunded_amount, o.buyer_ref_enc, o.buyer_ref_hash
          FROM orders o JOIN card c ON c.id = o.card_id
         WHERE {" AND ".join(where)}
         ORDER BY o.placed_at DESC, o.id DESC
         LIMIT :limit
        """
        ),
        params,
    )
    return list(rows)


async def commission_lines(session: AsyncSession, order_ids: list[int]) -> list[Any]:
    """The orders' commissions with each beneficiary's code and name (to be masked by the caller)."""
    if not order_ids:
        return []
    return list(
        await session.execute(
            text(
                """
        SELECT c.order_id, c.level, c.beneficiary_id, d.code, d.name, d.erased_at, c.rate_bps, c.base,
               c.amount, c.reversed, c.status
          FROM commission c JOIN distributor d ON d.id = c.beneficiary_id
         WHERE c.order_id = ANY(CAST(:ids AS bigint[]))
         ORDER BY c.order_id, c.level
        """
            ),
            {"ids": order_ids},
        )
    )


async def refunds_of(session: AsyncSession, order_ids: list[int]) -> list[Any]:
    if not order_ids:
        return []
    return list(
        await session.execute(
            text(
                "SELECT id, order_id, external_id, amount, created_at FROM refund "
                "WHERE order_id = ANY(CAST(:ids AS bigint[])) ORDER BY order_id, id"
            ),
            {"ids": order_ids},
        )
    )


_HAS_PLAN = text("SELECT EXISTS (SELECT 1 FROM commission_plan)")


async def has_commission_plan(session: AsyncSession) -> bool:
    (r,) = await pg.fetch(session, _HAS_PLAN, {})
    return bool(r[0])


_CARDS_FOR_SALE = text(
    """
    SELECT c.id, c.number, c.distributor_id, c.frozen_at, c.cancelled_at, d.status
      FROM card c JOIN distributor d ON d.id = c.distributor_id
     WHERE c.number = ANY(CAST(:numbers AS text[]))
    """
)
# the attributes of Hold that sell_refusal reads
_ACTIVE_HOLDS_OF = text(
    f"""
    SELECT hold.id, hold.distributor_id, hold.reason, hold.started_at, hold.ends_at, hold.appealable
      FROM hold
     WHERE hold.distributor_id = ANY(CAST(:owners AS bigint[])) AND {_ACTIVE_HOLD}
     ORDER BY hold.started_at, hold.id
    """
)


async def cards_for_sale(session: AsyncSession, numbers: list[str]) -> dict[str, tuple[Any, str, list[Any]]]:
    """Cards by number with their seller's status and active holds (two queries for any count).
    Plain rows, not Card and Hold instances (ORM identity-map work was 40 ms of a 1,000-order
    batch): sell_refusal reads the same attributes from either."""
    rows = await pg.fetch(session, _CARDS_FOR_SALE, {"numbers": pg.text_array(list(set(numbers)))})
    owners = sorted({card.distributor_id for card in rows})
    holds: dict[int, list[Any]] = {}
    if owners:
        for h in await pg.fetch(session, _ACTIVE_HOLDS_OF, {"owners": pg.int_array(owners)}):
            holds.setdefault(h.distributor_id, []).append(h)
    return {card.number: (card, card.status, holds.get(card.distributor_id, [])) for card in rows}


async def active_holds(session: AsyncSession, distributor_id: int) -> list[Hold]:
    return list(
        await session.scalars(
            select(Hold)
            .where(Hold.distributor_id == distributor_id, hold_is_active())
            .order_by(Hold.started_at, Hold.id)
        )
    )


async def order_by_id(session: AsyncSession, order_id: int, *, lock: bool = False) -> Order | None:
    stmt = select(Order).where(Order.id == order_id)
    if lock:
        # racing refunds of one order serialise here
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def refund_by_external_id(session: AsyncSession, order_id: int, external_id: str) -> Refund | None:
    return await session.scalar(
        select(Refund).where(Refund.order_id == order_id, Refund.external_id == external_id)
    )


async def add_refund(session: AsyncSession, order_id: int, external_id: str, amount: int) -> Refund:
    """The refund row, flushed (with the order's pending ``refunded_amount``) and read back."""
    refund = Refund(order_id=order_id, external_id=external_id, amount=amount)
    session.add(refund)
    await session.flush()
    await session.refresh(refund)
    return refund


async def commission_beneficiaries(session: AsyncSession, order_id: int) -> list[int]:
    return list(
        await session.scalars(
            text("SELECT DISTINCT beneficiary_id FROM commission WHERE order_id = :o"), {"o": order_id}
        )
    )


async def lock_reversal_accounts(
    session: AsyncSession, currency: str, beneficiaries: list[int], seller_id: int, order_id: int
) -> dict[tuple[int | None, str], int]:
    """Lock the accounts a refund's reversal posts to, in the one lock order (distributors' by id,
    then the platform's forfeited income); their balances by (distributor, kind)."""
    return {
        (r.distributor_id, r.kind): r.balance
        for r in await session.execute(
            text(
                """
                SELECT id, distributor_id, kind, balance FROM ledger_account
                 WHERE (currency = :cur AND (distributor_id = ANY(CAST(:ids AS bigint[]))
                        OR (distributor_id IS NULL AND kind = 'forfeited_income')))
                    -- the seller's points and the referral's sponsor's, reversed in the same
                    -- transaction (points.reverse_for_refund)
                    OR (currency = 'PTS' AND kind IN ('points', 'points_owed')
                        AND (distributor_id = :seller OR distributor_id IN (
                             SELECT distributor_id FROM points_lot WHERE order_id = :order AND source = 'referral')))
                 ORDER BY distributor_id IS NULL, id FOR NO KEY UPDATE
                """
            ),
            {"cur": currency, "ids": beneficiaries, "seller": seller_id, "order": order_id},
        )
    }


async def lock_commissions(session: AsyncSession, order_id: int) -> list[Any]:
    return list(
        (
            await session.execute(
                text(
                    """
            SELECT id, beneficiary_id, amount, reversed, status FROM commission
             WHERE order_id = :o ORDER BY level FOR UPDATE
            """
                ),
                {"o": order_id},
            )
        ).all()
    )


async def add_reversed(session: AsyncSession, updates: list[tuple[int, int]]) -> None:
    """Add each (commission id, amount) to the commission's ``reversed``."""
    await session.execute(
        text(
            """
            UPDATE commission c SET reversed = c.reversed + u.r
              FROM unnest(CAST(:ids AS bigint[]), CAST(:rs AS bigint[])) AS u(id, r) WHERE c.id = u.id
            """
        ),
        {"ids": [u[0] for u in updates], "rs": [u[1] for u in updates]},
    )
