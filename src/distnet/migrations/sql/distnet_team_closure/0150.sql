-- The team aggregate (issue 19): per (ancestor, depth) the members and their net sales (completed
-- order amounts net of refunds), what GET /distributors/{id}/team-stats answers. Every change of
-- the closure appends its effect to team_level_delta (append-only: concurrent registrations never
-- wait on an ancestor's row); network.repository.fold_team moves the deltas into team_level.
-- A member entering (ancestor, depth) adds 1 and their net sales; leaving, subtracts them. Moves
-- and closures hold the network move lock exclusively, orders take it shared before crediting
-- (distnet_team_orders), so the net sales read here are every committed order's.
-- Per distinct member one aggregate over its orders (ix_orders_seller_placed): a lateral
-- aggregate is never flattened, so the cached plan stays an index probe whatever the row count.
CREATE FUNCTION distnet_team_closure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO team_level_delta (ancestor_id, depth, members, sales)
    SELECT n.ancestor_id, n.depth, count(*), coalesce(sum(s.net), 0)
      FROM new_rows n
      LEFT JOIN (SELECT x.descendant_id, y.net
                   FROM (SELECT DISTINCT descendant_id FROM new_rows) x
                  CROSS JOIN LATERAL (SELECT sum(o.amount - o.refunded_amount) AS net FROM orders o
                                       WHERE o.seller_id = x.descendant_id) y) s
        ON s.descendant_id = n.descendant_id
     GROUP BY 1, 2;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO team_level_delta (ancestor_id, depth, members, sales)
    SELECT n.ancestor_id, n.depth, -count(*), -coalesce(sum(s.net), 0)
      FROM old_rows n
      LEFT JOIN (SELECT x.descendant_id, y.net
                   FROM (SELECT DISTINCT descendant_id FROM old_rows) x
                  CROSS JOIN LATERAL (SELECT sum(o.amount - o.refunded_amount) AS net FROM orders o
                                       WHERE o.seller_id = x.descendant_id) y) s
        ON s.descendant_id = n.descendant_id
     GROUP BY 1, 2;
  ELSE
    INSERT INTO team_level_delta (ancestor_id, depth, members, sales)
    SELECT n.ancestor_id, n.depth, sum(n.sign), coalesce(sum(n.sign * s.net), 0)
      FROM (SELECT ancestor_id, depth, descendant_id, 1 AS sign FROM new_rows
            UNION ALL
            SELECT ancestor_id, depth, descendant_id, -1 FROM old_rows) n
      LEFT JOIN (SELECT x.descendant_id, y.net
                   FROM (SELECT descendant_id FROM new_rows UNION SELECT descendant_id FROM old_rows) x
                  CROSS JOIN LATERAL (SELECT sum(o.amount - o.refunded_amount) AS net FROM orders o
                                       WHERE o.seller_id = x.descendant_id) y) s
        ON s.descendant_id = n.descendant_id
     GROUP BY 1, 2
    HAVING sum(n.sign) <> 0 OR coalesce(sum(n.sign * s.net), 0) <> 0;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER distributor_closure_team_insert AFTER INSERT ON distributor_closure
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION distnet_team_closure();
CREATE TRIGGER distributor_closure_team_delete AFTER DELETE ON distributor_closure
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION distnet_team_closure();
CREATE TRIGGER distributor_closure_team_update AFTER UPDATE ON distributor_closure
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION distnet_team_closure();
