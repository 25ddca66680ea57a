"""All SQL of the network domain. The sponsor forest is stored four ways, each for one question:

- ``distributor.sponsor_id``: the edge;
- ``distributor.path`` (ltree of ids from the root): the canonical path, kept for audits/rebuilds;
- ``distributor_closure`` (ancestor, depth, descendant): whole-downline questions — a page of the
  downline or per-level counts is an index range scan in (level, id) order, even for a 100k team;
- ``distributor_upline`` (bounded to 3 levels): joined by commission attribution, no recursion.

Every change rewrites all of them in the same transaction, set-based. Closed distributors leave
the closure (they are no longer anyone's downline or upline); their path stays for history."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards import repository as cards_repo
from distnet.db import rowcount
from distnet.kit import pg
from distnet.ranks.service import SALES

UPLINE_DEPTH = 3
"""Levels kept in ``distributor_upline``: the legal three-level ceiling, so also the cap's maximum."""

# Serialises network moves and closures: two concurrent moves (A under B, B under A) could
# otherwise each pass the cycle check and commit a cycle together.
NETWORK_MOVE_LOCK = 0x6E65_7477  # "netw"

SUBTREE = "(SELECT descendant_id FROM distributor_closure WHERE ancestor_id = :root UNION ALL SELECT :root)"


async def lock_network_moves(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": NETWORK_MOVE_LOCK})


async def next_distributor_id(session: AsyncSession) -> int:
    return await session.scalar(text("SELECT nextval(pg_get_serial_sequence('distributor', 'id'))"))


async def insert_links(session: AsyncSession, distributor_id: int, sponsor_id: int) -> None:
    """A new leaf under ``sponsor_id``: its closure rows and bounded upline, from the sponsor's."""
    params = {"id": distributor_id, "sponsor": sponsor_id, "levels": UPLINE_DEPTH}
    await session.execute(
        text(
            """
            INSERT INTO distributor_closure (ancestor_id, depth, descendant_id)
            SELECT :sponsor, 1, :id
            UNION ALL
            SELECT ancestor_id, depth + 1, :id FROM distributor_closure WHERE descendant_id = :sponsor
            """
        ),
        params,
    )
    await session.execute(
        text(
            """
            INSERT INTO distributor_upline (distributor_id, level, ancestor_id)
            SELECT :id, 1, :sponsor
            UNION ALL
            SELECT :id, level + 1, ancestor_id FROM distributor_upline
             WHERE distributor_id = :sponsor AND level < :levels
            """
        ),
        params,
    )


async def is_in_downline(session: AsyncSession, ancestor_id: int, candidate_id: int) -> bool:
    return bool(
        await session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM distributor_closure WHERE ancestor_id = :a AND descendant_id = :d)"
            ),
            {"a": ancestor_id, "d": candidate_id},
        )
    )


async def lock_subtree(session: AsyncSession, root_id: int) -> None:
    # Registrations take FOR SHARE on their sponsor; locking the whole subtree first makes a
    # concurrent registration under it wait, then read the rewritten path and closure.
    await session.execute(
        text(f"SELECT id FROM distributor WHERE id IN {SUBTREE} ORDER BY id FOR UPDATE"), {"root": root_id}
    )


async def move_subtree(session: AsyncSession, root_id: int, new_sponsor_id: int) -> None:
    """Re-parent the subtree at ``root_id`` under ``new_sponsor_id`` (cycle already refused)."""
    params = {"root": root_id, "sponsor": new_sponsor_id}
    await session.execute(
        text(
            f"""
            UPDATE distributor d
               SET path = s.path || subpath(d.path, nlevel(r.path) - 1),
                   depth = nlevel(s.path) + nlevel(d.path) - nlevel(r.path)
              FROM distributor s, distributor r
             WHERE s.id = :sponsor AND r.id = :root AND d.id IN {SUBTREE}
            """
        ),
        params,
    )
    # links from outside ancestors into the subtree go; links inside it stay as they are
    await session.execute(
        text(
            f"""
            DELETE FROM distributor_closure
             WHERE descendant_id IN {SUBTREE} AND ancestor_id NOT IN {SUBTREE}
            """
        ),
        params,
    )
    await session.execute(
        text(
            """
            INSERT INTO distributor_closure (ancestor_id, depth, descendant_id)
            SELECT a.ancestor_id, a.depth + 1 + s.depth, s.descendant_id
              FROM (SELECT ancestor_id, depth FROM distributor_closure WHERE descendant_id = :sponsor
                    UNION ALL SELECT :sponsor, 0) a
             CROSS JOIN (SELECT descendant_id, depth FROM distributor_closure WHERE ancestor_id = :root
                         UNION ALL SELECT :root, 0) s
            """
        ),
        params,
    )
    await session.execute(text("UPDATE distributor SET sponsor_id = :sponsor WHERE id = :root"), params)
    await rebuild_upline_below(session, root_id, UPLINE_DEPTH - 1)


async def compress_out(session: AsyncSession, distributor_id: int, sponsor_id: int | None) -> int:
    """Closure (注销): the distributor's whole downline moves up one level under its sponsor.
    Returns the number of direct recruits moved."""
    params = {"root": distributor_id, "sponsor": sponsor_id, "levels": UPLINE_DEPTH}
    await session.execute(
        text(
            """
            UPDATE distributor d
               SET path = CASE WHEN r.sponsor_id IS NULL THEN subpath(d.path, nlevel(r.path))
                               ELSE subpath(r.path, 0, nlevel(r.path) - 1) || subpath(d.path, nlevel(r.path)) END,
                   depth = d.depth - 1
              FROM distributor r
             WHERE r.id = :root
               AND d.id IN (SELECT descendant_id FROM distributor_closure WHERE ancestor_id = :root)
            """
        ),
        params,
    )
    await session.execute(
        text(
            """
            UPDATE distributor_closure SET depth = depth - 1
             WHERE descendant_id IN (SELECT descendant_id FROM distributor_closure WHERE ancestor_id = :root)
               AND ancestor_id IN (SELECT ancestor_id FROM distributor_closure WHERE descendant_id = :root)
            """
        ),
        params,
    )
    # the bounded upline of those within 3 levels below changes; compute before unlinking
    affected = await session.scalars(
        text("SELECT descendant_id FROM distributor_closure WHERE ancestor_id = :root AND depth <= :levels"),
        params,
    )
    affected_ids = list(affected)
    await session.execute(
        text("DELETE FROM distributor_closure WHERE ancestor_id = :root OR descendant_id = :root"), params
    )
    moved = await session.execute(
        text("UPDATE distributor SET sponsor_id = :sponsor WHERE sponsor_id = :root"), params
    )
    await session.execute(text("DELETE FROM distributor_upline WHERE distributor_id = :root"), params)
    await rebuild_upline_ids(session, affected_ids)
    return rowcount(moved)


async def rebuild_upline_below(session: AsyncSession, root_id: int, max_rel_depth: int) -> None:
    ids = await session.scalars(
        text(
            """SELECT descendant_id FROM distributor_closure WHERE ancestor_id = :root AND depth <= :d
               UNION ALL SELECT :root"""
        ),
        {"root": root_id, "d": max_rel_depth},
    )
    await rebuild_upline_ids(session, list(ids))


async def rebuild_upline_ids(session: AsyncSession, ids: list[int]) -> None:
    """Recompute the bounded upline of ``ids`` from the closure table."""
    if not ids:
        return
    params = {"ids": ids, "levels": UPLINE_DEPTH}
    await session.execute(
        text("DELETE FROM distributor_upline WHERE distributor_id = ANY(CAST(:ids AS bigint[]))"), params
    )
    await session.execute(
        text(
            """
            INSERT INTO distributor_upline (distributor_id, level, ancestor_id)
            SELECT descendant_id, depth, ancestor_id FROM distributor_closure
             WHERE descendant_id = ANY(CAST(:ids AS bigint[])) AND depth <= :levels
            """
        ),
        params,
    )


async def upline(
    session: AsyncSession, distributor_id: int, after_level: int, limit: int
) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            """
            SELECT c.ancestor_id AS id, d.code, c.depth AS level
              FROM distributor_closure c JOIN distributor d ON d.id = c.ancestor_id
             WHERE c.descendant_id = :id AND c.depth > :after
             ORDER BY c.depth
             LIMIT :limit
            """
        ),
        {"id": distributor_id, "after": after_level, "limit": limit},
    )
    return [dict(r._mapping) for r in rows]


async def downline_page(
    session: AsyncSession, distributor_id: int, max_depth: int, after: tuple[int, int] | None, limit: int
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {
        "id": distributor_id,
        "hi": max_depth,
        "limit": limit,
        "after_depth": 0,
        "after_id": 0,
    }
    if after is not None:
        params.update(after_depth=after[0], after_id=after[1])
    rows = await session.execute(
        text(
            """
            SELECT d.id, d.code, d.name, d.erased_at, d.sponsor_id, c.depth AS level, d.rank, d.joined_at
              FROM distributor_closure c JOIN distributor d ON d.id = c.descendant_id
             WHERE c.ancestor_id = :id AND c.depth <= :hi
               AND (c.depth, c.descendant_id) > (:after_depth, :after_id)
             ORDER BY c.depth, c.descendant_id
             LIMIT :limit
            """
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]


TEAM_STATS = text(
    """
    SELECT depth AS level, sum(members)::bigint AS count, sum(sales)::bigint AS sales
      FROM (SELECT depth, members, sales FROM team_level WHERE ancestor_id = :id
            UNION ALL
            SELECT depth, members, sales FROM team_level_delta WHERE ancestor_id = :id) t
     GROUP BY depth HAVING sum(members) > 0
     ORDER BY depth
    """
)


async def team_stats(session: AsyncSession, distributor_id: int) -> list[dict[str, Any]]:
    """Members and net sales per level, from the maintained aggregate (``TeamLevel``): the folded
    rows plus the deltas appended since the last fold, one statement so a concurrent fold is seen
    whole or not at all. A level count is what counting the closure gives (``network.checks``)."""
    rows = await session.execute(TEAM_STATS, {"id": distributor_id})
    return [{"level": r.level, "count": int(r[1]), "sales": int(r[2])} for r in rows]


# Serialises folds: two at once would upsert the same rows in different orders.
TEAM_FOLD_LOCK = 0x7465_616D  # "team"

_FOLD_TEAM = text(
    """
    WITH moved AS (
        DELETE FROM team_level_delta RETURNING ancestor_id, depth, members, sales
    )
    INSERT INTO team_level AS t (ancestor_id, depth, members, sales)
    SELECT ancestor_id, depth, sum(members), sum(sales) FROM moved GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (ancestor_id, depth) DO UPDATE
       SET members = t.members + EXCLUDED.members, sales = t.sales + EXCLUDED.sales
    RETURNING ancestor_id, depth, members, sales
    """
)


async def fold_team(session: AsyncSession) -> int:
    """Move the appended team deltas into ``team_level`` (scheduler job ``fold_team``): one
    statement, so a reader sees each delta here or there, never both or neither; levels left
    empty (a team moved or closed away) are removed. Returns the rows folded into."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": TEAM_FOLD_LOCK})
    rows = (await session.execute(_FOLD_TEAM)).all()
    empty = [(r.ancestor_id, r.depth) for r in rows if r.members == 0 and r.sales == 0]
    if empty:
        await session.execute(
            text("""DELETE FROM team_level t USING unnest(CAST(:a AS bigint[]), CAST(:d AS smallint[])) e(a, d)
                     WHERE t.ancestor_id = e.a AND t.depth = e.d AND t.members = 0 AND t.sales = 0"""),
            {"a": [a for a, _ in empty], "d": [d for _, d in empty]},
        )
    return len(rows)


async def net_sales_of(
    session: AsyncSession, seller_ids: list[int], placed_from: Any, placed_to: Any
) -> dict[int, int]:
    """Each seller's net sales (amount - refunded) placed in [from, to): a range scan of
    ix_orders_seller_placed per seller of one page."""
    if not seller_ids:
        return {}
    rows = await session.execute(
        text(
            """
        SELECT o.seller_id, sum(o.amount - o.refunded_amount)::bigint AS sales
          FROM orders o
         WHERE o.seller_id = ANY(CAST(:ids AS bigint[])) AND o.placed_at >= :lo AND o.placed_at < :hi
         GROUP BY o.seller_id
        """
        ),
        {"ids": seller_ids, "lo": placed_from, "hi": placed_to},
    )
    return {r.seller_id: int(r.sales) for r in rows}


async def team_size(session: AsyncSession, distributor_id: int, max_depth: int) -> int:
    """Members down to ``max_depth``: an index-only range scan of the closure's primary key."""
    return int(
        await session.scalar(
            text("SELECT count(*) FROM distributor_closure WHERE ancestor_id = :id AND depth <= :hi"),
            {"id": distributor_id, "hi": max_depth},
        )
        or 0
    )


# -- the read path (issue 19): each view in one prepared statement on the request's connection

_PROFILE_COLUMNS = (
    "d.id, d.code, d.name, d.sponsor_id, CAST(d.rank AS text) AS rank, d.region, CAST(d.status AS text) AS status, "
    "d.depth, d.joined_at, d.closed_at, "
)
# the live card, or for a closed account the last one (cards.service.current_card), and the
# owner's active holds unless that card is cancelled (cards.service.card_view)
_PROFILE_FROM = (
    "FROM distributor d LEFT JOIN LATERAL (SELECT * FROM card WHERE card.distributor_id = d.id "
    "ORDER BY card.cancelled_at IS NOT NULL, card.id DESC LIMIT 1) c ON true "
)


@functools.cache
def _profile_statement(me: bool) -> TextClause:
    holds = cards_repo.holds_lateral("d.id", "c.number IS NOT NULL AND c.cancelled_at IS NULL")
    columns = _PROFILE_COLUMNS + cards_repo.CARD_COLUMNS + ", " + cards_repo.HOLD_ARRAYS
    if not me:
        return text(f"SELECT {columns} {_PROFILE_FROM}{holds} WHERE d.id = :id")
    # /me adds the balances, the ladder in effect (ranks.service.ladder_at) and the sales over its
    # period (ranks.service.sales_totals)
    return text(
        f"""
        WITH lad AS (
            SELECT version, period_days, ranks, min_personal, min_team, effective_from FROM rank_ladder
             WHERE effective_from <= now() ORDER BY effective_from DESC, version DESC LIMIT 1
        )
        SELECT {columns},
               b.kinds AS balance_kinds, b.amounts AS balance_amounts,
               lad.version AS ladder_version, lad.period_days AS ladder_days, lad.ranks AS ladder_ranks,
               lad.min_personal AS ladder_min_personal, lad.min_team AS ladder_min_team,
               lad.effective_from AS ladder_from, t.personal, t.team
          {_PROFILE_FROM}{holds}
          LEFT JOIN lad ON true
          LEFT JOIN LATERAL (SELECT array_agg(CAST(a.kind AS text)) AS kinds, array_agg(a.balance) AS amounts
                               FROM ledger_account a WHERE a.distributor_id = d.id AND a.currency = :currency) b ON true
          LEFT JOIN LATERAL (SELECT coalesce(sum(s.personal), 0) AS personal, coalesce(sum(s.team), 0) AS team
                               FROM {SALES} s
                              WHERE s.distributor_id = d.id
                                AND s.day > distnet_local_day(now()) - coalesce(lad.period_days, :default_days)) t ON true
         WHERE d.id = :id
        """
    )


async def profile_row(session: AsyncSession, distributor_id: int) -> Any | None:
    """The distributor with its card and that card's holds (DistributorView), or None."""
    rows = await pg.fetch(session, _profile_statement(False), {"id": distributor_id})
    return rows[0] if rows else None


async def me_row(
    session: AsyncSession, distributor_id: int, *, currency: str, default_days: int
) -> Any | None:
    """``profile_row`` plus balances in ``currency``, the stored ladder in effect (ladder_* null
    when none: the default applies, ``default_days`` its period) and the sales over its period."""
    rows = await pg.fetch(
        session,
        _profile_statement(True),
        {"id": distributor_id, "currency": currency, "default_days": default_days},
    )
    return rows[0] if rows else None


_DOWNLINE_PAGE = text(
    """
    WITH page AS (
        SELECT d.id, d.code, d.name, d.erased_at, d.sponsor_id, c.depth AS level, CAST(d.rank AS text) AS rank,
               d.joined_at
          FROM distributor_closure c JOIN distributor d ON d.id = c.descendant_id
         WHERE c.ancestor_id = :id AND c.depth <= :hi
           AND (c.depth, c.descendant_id) > (:after_depth, :after_id)
         ORDER BY c.depth, c.descendant_id
         LIMIT :limit
    )
    SELECT EXISTS (SELECT 1 FROM distributor WHERE id = :id) AS found, p.*, s.sales
      FROM (SELECT 1) one
      LEFT JOIN page p ON true
      LEFT JOIN LATERAL (SELECT sum(o.amount - o.refunded_amount)::bigint AS sales FROM orders o
                          WHERE o.seller_id = p.id AND o.placed_at >= :lo AND o.placed_at < :hi_at) s ON true
     ORDER BY p.level, p.id
    """
)


async def downline_with_sales(
    session: AsyncSession,
    distributor_id: int,
    max_depth: int,
    after: tuple[int, int] | None,
    limit: int,
    placed_from: Any,
    placed_to: Any,
) -> tuple[bool, list[Any]]:
    """Whether the distributor exists, and a page of its downline (``downline_page``) with each
    member's net sales placed in [from, to) (``net_sales_of``), in one statement."""
    params: dict[str, Any] = {
        "id": distributor_id,
        "hi": max_depth,
        "limit": limit,
        "after_depth": 0,
        "after_id": 0,
        "lo": placed_from,
        "hi_at": placed_to,
    }
    if after is not None:
        params.update(after_depth=after[0], after_id=after[1])
    rows = await pg.fetch(session, _DOWNLINE_PAGE, params)
    return bool(rows[0].found), [r for r in rows if r.id is not None]
