"""Network invariants checked on a live database (run by ``distnet ledger verify`` with the money
checks, as each domain lists its own: ``kit.checks``)."""

from __future__ import annotations

from distnet.kit.checks import Check

# The maintained team aggregate (TeamLevel: folded rows plus unfolded deltas) against a recount of
# the closure and every member's orders, per (ancestor, depth); names each level that differs.
TEAM_LEVELS_RECOUNT = """
    WITH kept AS (
        SELECT ancestor_id, depth, sum(members) AS members, sum(sales) AS sales
          FROM (SELECT ancestor_id, depth, members, sales FROM team_level
                UNION ALL
                SELECT ancestor_id, depth, members, sales FROM team_level_delta) t
         GROUP BY 1, 2
    ), counted AS (
        SELECT c.ancestor_id, c.depth, count(*) AS members, coalesce(sum(s.net), 0) AS sales
          FROM distributor_closure c
          LEFT JOIN (SELECT seller_id, sum(amount - refunded_amount) AS net FROM orders GROUP BY 1) s
            ON s.seller_id = c.descendant_id
         GROUP BY 1, 2
    )
    SELECT coalesce(k.ancestor_id, c.ancestor_id) AS ancestor_id, coalesce(k.depth, c.depth) AS depth,
           CAST(coalesce(k.members, 0) AS bigint) AS kept_members, CAST(coalesce(c.members, 0) AS bigint) AS members,
           CAST(coalesce(k.sales, 0) AS bigint) AS kept_sales, CAST(coalesce(c.sales, 0) AS bigint) AS sales
      FROM kept k FULL JOIN counted c ON c.ancestor_id = k.ancestor_id AND c.depth = k.depth
     WHERE coalesce(k.members, 0) <> coalesce(c.members, 0) OR coalesce(k.sales, 0) <> coalesce(c.sales, 0)
     ORDER BY 1, 2
"""

CHECKS: tuple[Check, ...] = (
    Check(
        "team_levels_match_recount",
        "team stats per level (members, net sales) equal a recount of the closure and the members' orders",
        TEAM_LEVELS_RECOUNT,
    ),
)
