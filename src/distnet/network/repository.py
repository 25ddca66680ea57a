"""All SQL of the network domain. The sponsor forest is stored four ways, each for one question:

- ``distributor.sponsor_id``: the edge;
- ``distributor.path`` (ltree of ids from the root): the canonical path, kept for audits/rebuilds;
- ``distributor_closure`` (ancestor, depth, descendant): whole-downline questions — a page of the
  downline or per-level counts is an index range scan in (level, id) order, even for a 100k team;
- ``distributor_upline`` (bounded to 3 levels): joined by commission attribution, no recursion.

Every change rewrites all of them in the same transaction, set-based. Closed distributors leave
the closure (they are no longer anyone's downline or upline); their path stays for history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import rowcount

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
            text("SELECT EXISTS (SELECT 1 FROM distributor_closure WHERE ancestor_id = :a AND descendant_id = :d)"),
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


async def upline(session: AsyncSession, distributor_id: int, after_level: int, limit: int) -> list[dict[str, Any]]:
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
    params: dict[str, Any] = {"id": distributor_id, "hi": max_depth, "limit": limit,
                              "after_depth": 0, "after_id": 0}
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


async def team_stats(session: AsyncSession, distributor_id: int) -> list[dict[str, Any]]:
    """Members and net sales per level. Two queries on purpose: the counts are an index-only scan
    of the closure's primary key; the sales join touches only team members who have orders."""
    counts = await session.execute(
        text(
            """SELECT depth AS level, count(*) AS count FROM distributor_closure
                WHERE ancestor_id = :id GROUP BY depth ORDER BY depth"""
        ),
        {"id": distributor_id},
    )
    sales = await session.execute(
        text(
            """
            SELECT c.depth AS level, sum(o.amount - o.refunded_amount) AS sales
              FROM distributor_closure c JOIN orders o ON o.seller_id = c.descendant_id
             WHERE c.ancestor_id = :id
             GROUP BY c.depth
            """
        ),
        {"id": distributor_id},
    )
    by_level: dict[Any, Any] = dict(sales.all())
    return [{"level": level, "count": count, "sales": by_level.get(level, 0)} for level, count in counts.all()]


async def net_sales_of(session: AsyncSession, seller_ids: list[int], placed_from: Any, placed_to: Any) -> dict[int, int]:
    """Each seller's net sales (amount - refunded) placed in [from, to): a range scan of
    ix_orders_seller_placed per seller of one page."""
    if not seller_ids:
        return {}
    rows = await session.execute(text(
        """
        SELECT o.seller_id, sum(o.amount - o.refunded_amount)::bigint AS sales
          FROM orders o
         WHERE o.seller_id = ANY(CAST(:ids AS bigint[])) AND o.placed_at >= :lo AND o.placed_at < :hi
         GROUP BY o.seller_id
        """), {"ids": seller_ids, "lo": placed_from, "hi": placed_to})
    return {r.seller_id: int(r.sales) for r in rows}


async def team_size(session: AsyncSession, distributor_id: int, max_depth: int) -> int:
    """Members down to ``max_depth``: an index-only range scan of the closure's primary key."""
    return int(await session.scalar(text(
        "SELECT count(*) FROM distributor_closure WHERE ancestor_id = :id AND depth <= :hi"),
        {"id": distributor_id, "hi": max_depth}) or 0)
