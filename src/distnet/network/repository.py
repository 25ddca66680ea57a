"""All SQL of the network domain. The sponsor forest is stored three ways, each for one question:
``sponsor_id`` (the edge), ``path`` ltree (whole-downline questions: ``path <@ p``), and the
bounded closure table ``distributor_upline`` (the nearest ancestors, joined by commission
attribution without recursion). Every change rewrites all three in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

UPLINE_DEPTH = 3
"""Levels kept in ``distributor_upline``: the legal three-level ceiling, so also the cap's maximum."""

# Serialises network moves and closures: two concurrent moves (A under B, B under A) could
# otherwise each pass the cycle check and commit a cycle together.
NETWORK_MOVE_LOCK = 0x6E65_7477  # "netw"


async def lock_network_moves(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": NETWORK_MOVE_LOCK})


async def next_distributor_id(session: AsyncSession) -> int:
    return await session.scalar(text("SELECT nextval(pg_get_serial_sequence('distributor', 'id'))"))


async def rebuild_upline(session: AsyncSession, root_path: str, max_depth: int | None = None) -> None:
    """Recompute the bounded upline of every distributor under ``root_path`` (inclusive) from
    its path, down to ``max_depth`` (absolute depth) when given: below that nothing changed."""
    params: dict[str, Any] = {"root": root_path, "levels": UPLINE_DEPTH}
    depth_filter = ""
    if max_depth is not None:
        depth_filter = "AND d.depth <= :max_depth"
        params["max_depth"] = max_depth
    await session.execute(
        text(
            f"""
            DELETE FROM distributor_upline u USING distributor d
             WHERE u.distributor_id = d.id AND d.path <@ CAST(:root AS ltree) {depth_filter}
            """
        ),
        params,
    )
    await session.execute(
        text(
            f"""
            INSERT INTO distributor_upline (distributor_id, level, ancestor_id)
            SELECT d.id, k, ltree2text(subpath(d.path, nlevel(d.path) - 1 - k, 1))::bigint
              FROM distributor d, generate_series(1, :levels) AS k
             WHERE d.path <@ CAST(:root AS ltree) {depth_filter} AND nlevel(d.path) - 1 - k >= 0
            """
        ),
        params,
    )


async def insert_upline_from_sponsor(session: AsyncSession, distributor_id: int, sponsor_id: int) -> None:
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
        {"id": distributor_id, "sponsor": sponsor_id, "levels": UPLINE_DEPTH},
    )


async def move_subtree(session: AsyncSession, old_path: str, new_prefix: str | None) -> int:
    """Re-root the subtree at ``old_path`` under ``new_prefix`` (None: the subtree root becomes a
    tree root). Returns the number of rows rewritten."""
    result = await session.execute(
        text(
            """
            UPDATE distributor
               SET path = CASE WHEN CAST(:new_prefix AS ltree) IS NULL
                               THEN subpath(path, nlevel(CAST(:old AS ltree)) - 1)
                               ELSE CAST(:new_prefix AS ltree) || subpath(path, nlevel(CAST(:old AS ltree)) - 1)
                          END,
                   depth = nlevel(path) - nlevel(CAST(:old AS ltree))
                           + coalesce(nlevel(CAST(:new_prefix AS ltree)), 0)
             WHERE path <@ CAST(:old AS ltree)
            """
        ),
        {"old": old_path, "new_prefix": new_prefix},
    )
    return result.rowcount


async def lock_subtree(session: AsyncSession, path: str) -> None:
    # Registrations take FOR SHARE on their sponsor; locking the whole subtree first makes a
    # concurrent registration under it wait and then read the rewritten path.
    await session.execute(
        text("SELECT id FROM distributor WHERE path <@ CAST(:p AS ltree) ORDER BY id FOR UPDATE"), {"p": path}
    )


async def upline(session: AsyncSession, path: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            """
            SELECT d.id, d.code, nlevel(CAST(:p AS ltree)) - 1 - d.depth AS level
              FROM distributor d
             WHERE d.id = ANY(CAST(string_to_array(ltree2text(CAST(:p AS ltree)), '.') AS bigint[]))
               AND d.depth < nlevel(CAST(:p AS ltree)) - 1
             ORDER BY d.depth DESC
            """
        ),
        {"p": path},
    )
    return [dict(r._mapping) for r in rows]


async def downline_page(
    session: AsyncSession, path: str, depth: int, max_depth: int, after: tuple[int, int] | None, limit: int
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"p": path, "lo": depth + 1, "hi": depth + max_depth, "limit": limit, "base": depth}
    keyset = ""
    if after is not None:
        keyset = "AND (d.depth, d.id) > (:after_depth, :after_id)"
        params.update(after_depth=after[0], after_id=after[1])
    rows = await session.execute(
        text(
            f"""
            SELECT d.id, d.code, d.depth - :base AS level, d.rank, d.joined_at, d.depth
              FROM distributor d
             WHERE d.path <@ CAST(:p AS ltree) AND d.depth BETWEEN :lo AND :hi
               AND d.status <> 'closed' {keyset}
             ORDER BY d.depth, d.id
             LIMIT :limit
            """
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]


async def team_stats(session: AsyncSession, path: str, depth: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            """
            WITH team AS (
                SELECT d.id, d.depth FROM distributor d
                 WHERE d.path <@ CAST(:p AS ltree) AND d.depth > :depth AND d.status <> 'closed'
            ), sales AS (
                SELECT o.seller_id, sum(o.amount - o.refunded_amount) AS net
                  FROM orders o JOIN team t ON t.id = o.seller_id
                 GROUP BY o.seller_id
            )
            SELECT t.depth - :depth AS level, count(*) AS count, coalesce(sum(s.net), 0) AS sales
              FROM team t LEFT JOIN sales s ON s.seller_id = t.id
             GROUP BY t.depth ORDER BY t.depth
            """
        ),
        {"p": path, "depth": depth},
    )
    return [dict(r._mapping) for r in rows]


async def subtree_ids(session: AsyncSession, path: str, *, max_depth: int) -> list[int]:
    rows = await session.scalars(
        text("SELECT id FROM distributor WHERE path <@ CAST(:p AS ltree) AND depth <= :d"),
        {"p": path, "d": max_depth},
    )
    return list(rows)


async def remove_from_paths(session: AsyncSession, path: str, sponsor_path: str | None) -> None:
    """Take the distributor at ``path`` out of its descendants' paths (closure compression)."""
    await session.execute(
        text(
            """
            UPDATE distributor
               SET path = CASE WHEN CAST(:sp AS ltree) IS NULL THEN subpath(path, nlevel(CAST(:p AS ltree)))
                               ELSE CAST(:sp AS ltree) || subpath(path, nlevel(CAST(:p AS ltree))) END,
                   depth = depth - 1
             WHERE path <@ CAST(:p AS ltree) AND path <> CAST(:p AS ltree)
            """
        ),
        {"p": path, "sp": sponsor_path},
    )


async def rebuild_upline_ids(session: AsyncSession, ids: list[int]) -> None:
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
            SELECT d.id, k, ltree2text(subpath(d.path, nlevel(d.path) - 1 - k, 1))::bigint
              FROM distributor d, generate_series(1, :levels) AS k
             WHERE d.id = ANY(CAST(:ids AS bigint[])) AND nlevel(d.path) - 1 - k >= 0
            """
        ),
        params,
    )
