"""All SQL of commissions. Attribution is ONE set-based statement for any set of orders (one
order from POST /orders, up to 1,000 from a batch, millions from an import): it joins the orders
to the plan effective at ``placed_at`` and to the stored nearest ancestors (``distributor_upline``),
inserts one commission per (order, level) and writes the whole ledger transaction's postings in
the same statement, so the ledger trigger checks the balance of everything at once."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.commissions.rules import DEFAULT_HOLD_DAYS, DEFAULT_RATES
from distnet.kit import pg
from distnet.ledger.postings import check_posted, posted_columns, posting_ctes

# ``{orders}`` is a query yielding the ids of the orders to attribute.
# Levels: 1 = the seller, k + 1 = upline level k. A level is skipped (no row) when it is above the
# plan's max_levels or the platform cap, when the beneficiary is closed, when the order's
# category is excluded or its amount is below the plan minimum (GET /orders/{id} explains skips).
# Withheld when the beneficiary has an active violation hold (the earliest one is recorded).
_QUALIFIED = (
    "(own_sales >= min_own_sales AND (min_rank IS NULL OR array_position(ARRAY['member', 'silver', 'gold', "
    "'platinum'], CAST(rank AS text)) >= array_position(ARRAY['member', 'silver', 'gold', 'platinum'], "
    "CAST(min_rank AS text))))"
)
"""A judged level's beneficiary meets its qualification (commission_qualification)."""

_ATTRIBUTE = (
    """
WITH {before}o AS (
    {order_rows}
), plans AS (
    -- effective ranges of the plan versions (the latest version wins on equal effective_from):
    -- a range join, not a per-order lookup, so a million orders cost one hash/nested join
    SELECT p.*, lead(p.effective_from) OVER (ORDER BY p.effective_from) AS until
      FROM (SELECT DISTINCT ON (effective_from) id, effective_from, max_levels, hold_days, min_order_amount,
                   excluded_categories
              FROM commission_plan ORDER BY effective_from, version DESC) p
), op AS (
    SELECT o.*, p.id AS plan_id, p.max_levels, p.hold_days
      FROM o JOIN plans p ON o.placed_at >= p.effective_from AND (p.until IS NULL OR o.placed_at < p.until)
     WHERE o.amount >= p.min_order_amount
       AND (o.category IS NULL OR NOT (o.category = ANY(p.excluded_categories)))
), ben AS (
    -- each level with its beneficiary's rank: the distributor is joined inside each branch, so
    -- the rate is looked up by (plan, level, rank) afterwards. Joined after the union, the plan
    -- (misjudging the union's size) matched every line to all four ranks' rates first and then
    -- looked up the distributor of each of those four lines: 12M index lookups per million
    -- orders at L, half of a chunk's time
    SELECT op.id, op.amount, op.currency, op.placed_at, op.plan_id, op.hold_days, 1 AS level,
           op.seller_id AS beneficiary_id, d.rank
      FROM op JOIN distributor d ON d.id = op.seller_id AND d.status <> 'closed'
    UNION ALL
    SELECT op.id, op.amount, op.currency, op.placed_at, op.plan_id, op.hold_days, u.level + 1, u.ancestor_id, d.rank
      FROM op JOIN distributor_upline u
        ON u.distributor_id = op.seller_id AND u.level + 1 <= least(op.max_levels, :cap)
      JOIN distributor d ON d.id = u.ancestor_id AND d.status <> 'closed'
), held AS (
    SELECT DISTINCT ON (h.distributor_id) h.distributor_id, h.id AS hold_id
      FROM hold h
     WHERE h.reason <> 'maintenance' AND h.lifted_at IS NULL AND h.started_at <= now()
       AND (h.ends_at IS NULL OR h.ends_at > now())
     ORDER BY h.distributor_id, h.started_at, h.id
), judged AS (
    -- a level the plan puts a qualification on is judged by the beneficiary's own net sales over
    -- the period up to placed_at (distnet_own_sales) and its rank; no qualification row: qualified
    SELECT ben.id AS order_id, ben.level, ben.beneficiary_id, ben.plan_id, ben.rank, r.rate_bps,
           ben.amount AS base, ben.amount * r.rate_bps / 10000 AS amount, ben.currency,
           ben.placed_at + make_interval(days => ben.hold_days) AS hold_until, held.hold_id,
           q.min_own_sales, q.period_days, q.min_rank,
           CASE WHEN q.min_own_sales > 0 THEN distnet_own_sales(ben.beneficiary_id, ben.placed_at, q.period_days)
                ELSE 0 END AS own_sales
      FROM ben
      JOIN commission_rate r ON r.plan_id = ben.plan_id AND r.level = ben.level AND r.rank = ben.rank
      LEFT JOIN held ON held.distributor_id = ben.beneficiary_id
      LEFT JOIN commission_qualification q ON q.plan_id = ben.plan_id AND q.level = ben.level
), skipped AS (
    INSERT INTO commission_skip (order_id, level, beneficiary_id, plan_id, rank, own_sales, min_own_sales, period_days,
                                 min_rank)
    SELECT order_id, level, beneficiary_id, plan_id, rank, own_sales, min_own_sales, period_days, min_rank
      FROM judged WHERE min_own_sales IS NOT NULL AND NOT """
    + "{qualified}"
    + """
    RETURNING 1
), cand AS (
    SELECT * FROM judged WHERE min_own_sales IS NULL OR """
    + "{qualified}"
    + """
    -- no anti-join with existing commissions and no ON CONFLICT: callers attribute orders they
    -- have just inserted in this transaction, so none has any and no other transaction can add
    -- one; if one had, the unique index (order_id, level) fails the statement (speculative
    -- insertion cost about a quarter of a bulk insert)
), ins AS (
    INSERT INTO commission (order_id, level, beneficiary_id, plan_id, rank_used, rate_bps, base, amount,
                            status, hold_until, withheld_hold_id)
    SELECT order_id, level, beneficiary_id, plan_id, rank, rate_bps, base, amount,
           CASE WHEN hold_id IS NULL THEN 'pending' ELSE 'withheld' END, hold_until, hold_id
      FROM cand
    RETURNING {returning}
), accrued AS (
    {accrued}
), lines AS (
    {lines}
), """
    + posting_ctes(
        kind="'commission.accrued'",
        ref_type=":ref_type",
        ref_id="{ref_id}",
        memo=":memo",
        when="EXISTS (SELECT 1 FROM accrued WHERE amount > 0)",
        commission_ids=True,
    )
    + """{after}
SELECT {columns}{count} AS commissions,
       (SELECT coalesce(sum(amount), 0) FROM accrued) AS accrued_amount,
       """
    + posted_columns()
    + """,
       (SELECT id FROM txn) AS transaction_id
{rows}"""
)

_ATTRIBUTE = _ATTRIBUTE.replace("{qualified}", _QUALIFIED)

# per commission: the commissions written come back too (one row each, the counts repeated), so a
# single order's answer needs no second read
COMMISSION_COLUMNS = (
    "id",
    "order_id",
    "level",
    "beneficiary_id",
    "rate_bps",
    "rank_used",
    "plan_version",
    "base",
    "amount",
    "reversed",
    "status",
    "hold_until",
    "withheld_hold_id",
)
_ROWS = """, i.* FROM (SELECT i.*, p.version AS plan_version FROM ins i JOIN commission_plan p ON p.id = i.plan_id) i
 RIGHT JOIN (SELECT 1) one ON true ORDER BY i.order_id, i.level"""

# one transaction, postings per commission (each carries its commission_id)
_LINES_PER_COMMISSION = """
    SELECT id AS commission_id, beneficiary_id AS owner,
           CASE WHEN status = 'withheld' THEN 'withheld' ELSE 'pending' END AS kind, amount, currency
      FROM accrued
    UNION ALL
    SELECT id, NULL, 'commission_expense', -amount, currency FROM accrued
"""

# one transaction, postings aggregated per (beneficiary, account, currency); commission_id null
_LINES_AGGREGATED = """
    SELECT NULL::bigint AS commission_id, beneficiary_id AS owner,
           CASE WHEN status = 'withheld' THEN 'withheld' ELSE 'pending' END AS kind,
           sum(amount)::bigint AS amount, currency
      FROM accrued GROUP BY 2, 3, 5
    UNION ALL
    SELECT NULL::bigint, NULL::bigint, 'commission_expense', -sum(amount)::bigint, currency
      FROM accrued GROUP BY currency
"""


# per commission: the inserted rows (their ids go on the postings)
_ACCRUED_INSERTED = """SELECT ins.id, ins.beneficiary_id, ins.amount, ins.status, cand.currency
      FROM ins JOIN cand ON cand.order_id = ins.order_id AND cand.level = ins.level
     WHERE ins.amount > 0"""
# aggregated: straight from the candidates (no join back); every candidate is inserted (the INSERT
# has no ON CONFLICT: it writes them all or fails)
_ACCRUED_CANDIDATES = """SELECT NULL::bigint AS id, beneficiary_id, amount,
           CASE WHEN hold_id IS NULL THEN 'pending' ELSE 'withheld' END AS status, currency
      FROM cand WHERE amount > 0"""


# bulk (attribute_in_chunks): one currency and id range per statement; the candidates stream
# straight into the INSERT like a plain INSERT ... SELECT (no second reader, so no 3M-row CTE
# written to disk), and the commissions' sums per beneficiary go to a temporary table. The
# postings come once, for the whole set, from those sums (_POST_SUMS): posting each range's sums
# wrote ~870k postings per million orders at L, most of them for the same accounts again.
_BULK_TAIL = """), summed AS (
    INSERT INTO accrual_sums (owner, kind, currency, amount, n)
    SELECT beneficiary_id, CASE WHEN status = 'withheld' THEN 'withheld' ELSE 'pending' END, CAST(:currency AS text),
           sum(amount)::bigint, count(*)
      FROM ins GROUP BY 1, 2
    RETURNING amount, n
)
SELECT coalesce(sum(n), 0) AS commissions, coalesce(sum(amount), 0) AS accrued_amount FROM summed"""

_POST_SUMS = text(
    """
WITH lines AS MATERIALIZED (
    SELECT owner, kind, currency, sum(amount)::bigint AS amount
      FROM accrual_sums GROUP BY 1, 2, 3 HAVING sum(amount) > 0
    UNION ALL
    SELECT NULL::bigint, 'commission_expense', currency, -sum(amount)::bigint
      FROM accrual_sums GROUP BY currency HAVING sum(amount) > 0
), """
    + posting_ctes(
        kind="'commission.accrued'",
        ref_type=":ref_type",
        ref_id=":ref_id",
        memo=":memo",
        when="EXISTS (SELECT 1 FROM lines)",
    )
    + """
SELECT """
    + posted_columns()
    + """, (SELECT id FROM txn) AS transaction_id"""
)

_RETURNING = (
    "id, order_id, level, beneficiary_id, amount, status, plan_id, rank_used, rate_bps, base, reversed, "
    "hold_until, withheld_hold_id"
)
ORDER_ROWS = "SELECT o.id, o.seller_id, o.amount, o.currency, o.category, o.placed_at FROM orders o WHERE o.id IN ({orders})"


@functools.lru_cache(maxsize=32)
def attribute_sql(
    orders: str,
    *,
    aggregate: bool,
    before: str = "",
    order_rows: str | None = None,
    after: str = "",
    columns: str = "",
    ref_id: str = ":ref_id",
    rows: bool | None = None,
    bulk: bool = False,
    qualifications: bool = True,
) -> str:
    """The attribution statement for the orders whose ids ``orders`` selects. A caller may also
    give the order rows themselves (``order_rows``, e.g. from an INSERT in ``before``: one
    statement that writes an order and its commissions), more CTEs (``after``) and more leading
    result ``columns`` ("expr AS name, "). The commissions written come back as rows unless
    ``aggregate`` (``rows`` overrides: a batch aggregates its postings but answers with every
    commission)."""
    rows = not aggregate if rows is None else rows
    if bulk:  # the orders of one currency (``:currency``) and id range; sums to ``accrual_sums``
        # the range is on ``orders`` itself and on the id set, and the chunk's rows are read first
        # (MATERIALIZED) by the primary key: inlined, the plan read every order by its placed_at
        # index per plan version and hashed the whole id set, per chunk (at L each of ten chunks
        # took 2.8 times the one chunk of M: quadratic)
        ranged = (
            "SELECT o.id, o.seller_id, o.amount, o.currency, o.category, o.placed_at FROM orders o "
            "WHERE o.id >= :chunk_from AND o.id < :chunk_to AND o.currency = :currency "
            f"AND o.id IN (SELECT x.id FROM ({orders}) x(id) WHERE x.id >= :chunk_from AND x.id < :chunk_to)"
        )
        head = _ATTRIBUTE[: _ATTRIBUTE.index("), accrued AS (")].replace("o AS (", "o AS MATERIALIZED (", 1)
        if not qualifications:  # no plan judges a level: nothing to skip, and ``judged``, read
            # once, streams into the insert instead of being written out (3M rows, 300 MB a chunk)
            head = head[: head.index("), skipped AS (")] + head[head.index("), cand AS (") :]
        sql = (
            head.format(before=before, order_rows=ranged, returning="beneficiary_id, amount, status")
            + _BULK_TAIL
        )
        return " ".join(re.sub(r"--[^\n]*", "", sql).split())
    sql = _ATTRIBUTE.format(
        before=before,
        order_rows=order_rows or ORDER_ROWS.format(orders=orders),
        after=after,
        columns=columns,
        ref_id=ref_id,
        lines=_LINES_AGGREGATED if aggregate else _LINES_PER_COMMISSION,
        accrued=_ACCRUED_CANDIDATES if aggregate else _ACCRUED_INSERTED,
        rows=_ROWS if rows else "",
        # an import's inserted rows are only counted (a million-row CTE of
        # every column spilled to disk)
        returning=_RETURNING if rows or not aggregate else "1",
        count="(SELECT count(*) FROM ins)",
    )
    # without comments and runs of blanks it stays under psycopg's 4,096 characters, so its
    # parameter parsing is cached instead of redone on every order (the SQL has no string
    # literal with "--" or repeated blanks)
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


@functools.lru_cache(maxsize=32)
def _attribute_text(orders: str, aggregate: bool, rows: bool) -> TextClause:
    return text(attribute_sql(orders, aggregate=aggregate, rows=rows))


@functools.lru_cache(maxsize=8)
def _bulk_text(orders: str, qualifications: bool = True) -> TextClause:
    return text(attribute_sql(orders, aggregate=True, bulk=True, qualifications=qualifications))


# Whether any plan judges a level, for the rest of the transaction: the SHARE lock makes a plan
# created meanwhile (its qualification rows) wait for our commit, so the answer cannot go stale.
_LOCK_QUALIFICATIONS = text("LOCK TABLE commission_qualification IN SHARE MODE")
_QUALIFICATIONS = text("SELECT EXISTS (SELECT 1 FROM commission_qualification)")


async def attribute(
    session: AsyncSession,
    orders: str,
    params: dict[str, Any],
    *,
    cap: int,
    aggregate: bool,
    ref_type: str,
    ref_id: object,
    memo: str | None = None,
    statement: TextClause | None = None,
    rows: bool | None = None,
) -> dict[str, Any]:
    """Attribute the orders selected by the SQL ``orders`` (ids); returns counts, the ledger
    transaction id and (not ``aggregate``, or ``rows``) the commissions written, as ``rows``.
    Raises if a posting found no account (the trigger refuses the imbalance)."""
    rows = not aggregate if rows is None else rows
    found = await pg.fetch(
        session,
        statement if statement is not None else _attribute_text(orders, aggregate, rows),
        {**params, "cap": cap, "ref_type": ref_type, "ref_id": str(ref_id), "memo": memo},
    )
    first = found[0]._asdict()
    result = {k: first[k] for k in ("commissions", "lines", "posted", "transaction_id")}
    result["first"] = first
    result["amount"] = first["accrued_amount"]
    if rows:
        # the commissions written, as the rows came (attributes named as COMMISSION_COLUMNS): a
        # dict per row was 9% of a 1,000-order batch's server time
        result["rows"] = [r for r in found if r.id is not None]
    check_posted("attribution", result["lines"], result["posted"])
    return result


# Orders per attribution statement when a large set (an import, a backfill) is attributed. One
# statement over 10M orders spilled 3.7 GB of temporary files and ran 2.4x the plain INSERT ...
# SELECT; a million orders (3M commission rows) stays close to it.
CHUNK_ORDERS = 1_000_000


async def attribute_in_chunks(
    session: AsyncSession,
    orders: str,
    params: dict[str, Any],
    *,
    cap: int,
    ref_type: str,
    ref_id: object,
    memo: str | None = None,
    chunk: int | None = None,
) -> dict[str, Any]:
    """Attribute any number of orders (an import) in the caller's transaction: one statement per
    currency and id range of about ``chunk`` orders writes the commissions, then one statement
    posts their sums per account as a single balanced ledger transaction. Returns the counts and
    that transaction's id."""
    chunk = chunk or CHUNK_ORDERS
    # its joins and sums hash whole chunks: in memory, not spilled at the default 4 MB; and the
    # chunk statement runs ten times at L on one connection: custom plans only (this transaction
    # only; the import sets the same)
    await session.execute(pg.bulk_settings("256MB"))
    spans: Sequence[Any] = (
        await session.execute(
            text(
                f"SELECT currency, min(id), max(id), count(*) FROM orders WHERE id IN ({orders}) GROUP BY currency "
                "ORDER BY currency"
            ),
            params,
        )
    ).all()
    await session.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS accrual_sums (owner bigint, kind text, currency text, "
            "amount bigint, n bigint) ON COMMIT DROP"
        )
    )
    await session.execute(text("TRUNCATE accrual_sums"))
    await session.execute(_LOCK_QUALIFICATIONS)
    statement = _bulk_text(orders, bool(await session.scalar(_QUALIFICATIONS)))
    total: dict[str, Any] = {"commissions": 0, "amount": 0}
    # hash joins only, whatever the estimates: the plan judges a chunk's lines at a few rows (the
    # id-set semi-join is guessed at a tenth, the rate join at almost nothing), and a left join
    # judged that small became a nested loop over every active hold for each of 3M lines
    await session.execute(pg.NO_NESTED_LOOPS)
    for currency, lo, hi, n in spans:
        width = -(-(hi - lo + 1) * chunk // n)  # ids are nearly dense (one sequence): ~chunk orders a range
        for start in range(lo, hi + 1, width):
            part = (
                await session.execute(
                    statement,
                    {
                        **params,
                        "cap": cap,
                        "currency": currency,
                        "chunk_from": start,
                        "chunk_to": min(start + width, hi + 1),
                    },
                )
            ).one()
            total["commissions"] += part.commissions
            total["amount"] += part.accrued_amount
    await session.execute(pg.NESTED_LOOPS_AGAIN)
    posted = (
        await session.execute(_POST_SUMS, {"ref_type": ref_type, "ref_id": str(ref_id), "memo": memo})
    ).one()
    check_posted("attribution", posted.lines, posted.posted)
    return {**total, "lines": posted.lines, "posted": posted.posted, "transaction_id": posted.transaction_id}


async def ensure_accounts_for(
    session: AsyncSession, orders: str, params: dict[str, Any], default_currency: str
) -> None:
    """Open platform accounts for the orders' currencies, and the beneficiaries' accounts in any
    currency other than the default (default-currency accounts are opened at registration)."""
    await session.execute(
        text(
            f"""
            INSERT INTO ledger_account (distributor_id, kind, currency, balance)
            SELECT NULL, k, c.currency, 0
              FROM (SELECT DISTINCT currency FROM orders WHERE id IN ({orders})) c,
                   unnest(ARRAY['commission_expense','payout_clearing','forfeited_income','repayment_clearing',
                                'tax_payable']) k
            ON CONFLICT DO NOTHING
            """
        ),
        params,
    )
    await session.execute(
        text(
            f"""
            INSERT INTO ledger_account (distributor_id, kind, currency, balance)
            SELECT DISTINCT b.id, k, o.currency, 0
              FROM orders o
              CROSS JOIN LATERAL (SELECT o.seller_id AS id UNION ALL
                                  SELECT ancestor_id FROM distributor_upline WHERE distributor_id = o.seller_id) b,
                   unnest(ARRAY['pending','available','withheld','reserved','paid','owed']) k
             WHERE o.id IN ({orders}) AND o.currency <> :default_currency
            ON CONFLICT DO NOTHING
            """
        ),
        {**params, "default_currency": default_currency},
    )


async def plan_at(session: AsyncSession, at: Any) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                """
                SELECT id, version, name, max_levels, hold_days, min_order_amount, excluded_categories,
                       effective_from
                  FROM commission_plan WHERE effective_from <= :at
                 ORDER BY effective_from DESC, version DESC LIMIT 1
                """
            ),
            {"at": at},
        )
    ).one_or_none()
    return dict(row._mapping) if row else None


async def plan_rates(session: AsyncSession, plan_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text("SELECT level, rank, rate_bps FROM commission_rate WHERE plan_id = :p ORDER BY level, rank"),
        {"p": plan_id},
    )
    return [dict(r._mapping) for r in rows]


async def ensure_default_plan(session: AsyncSession) -> None:
    """The migration seeds plan version 1; this puts it back on an emptied database (tests,
    a scratch benchmark) so that orders are never silently attributed nothing."""
    await session.execute(text("SELECT pg_advisory_xact_lock(7002)"))
    exists = await session.scalar(text("SELECT EXISTS (SELECT 1 FROM commission_plan)"))
    if exists:
        return
    plan_id = await session.scalar(
        text(
            """
            INSERT INTO commission_plan (version, name, max_levels, hold_days, min_order_amount,
                                         excluded_categories, effective_from, created_by)
            VALUES (1, 'default three-level plan', 3, :hold, 0, '{}', '2000-01-01T00:00:00Z', 'system')
            RETURNING id
            """
        ),
        {"hold": DEFAULT_HOLD_DAYS},
    )
    await session.execute(
        text(
            """
            INSERT INTO commission_rate (plan_id, level, rank, rate_bps)
            SELECT :p, l, r, b FROM unnest(CAST(:levels AS int[]), CAST(:ranks AS text[]), CAST(:bps AS int[])) AS t(l, r, b)
            """
        ),
        {
            "p": plan_id,
            "levels": [lv for lv, rs in DEFAULT_RATES.items() for _ in rs],
            "ranks": [rk for rs in DEFAULT_RATES.values() for rk in rs],
            "bps": [b for rs in DEFAULT_RATES.values() for b in rs.values()],
        },
    )
