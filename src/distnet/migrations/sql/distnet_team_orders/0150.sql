-- The team aggregate (issue 19, see distnet_team_closure): an order's net amount (amount minus
-- refunds) is credited to every ancestor of its seller at the seller's depth below them, appended
-- to team_level_delta. Inserts credit, refunds (and any update of amount, refunded_amount or
-- seller_id) credit the difference, deletes take it back. Before reading the closure the order
-- takes the network move lock shared (moves and closures take it exclusively): a move waits for
-- the orders in flight, and an order waiting on a move then reads the moved closure (a new
-- snapshot per statement of this function), so a member's sales always follow the member.
-- The lateral closure probe is never flattened: one index probe per seller, whatever the plan cache holds.
CREATE FUNCTION distnet_team_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE amount <> refunded_amount) THEN
      RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1852142711);  -- network.repository.NETWORK_MOVE_LOCK
    INSERT INTO team_level_delta (ancestor_id, depth, members, sales)
    SELECT c.ancestor_id, c.depth, 0, sum(s.net)
      FROM (SELECT seller_id, sum(amount - refunded_amount) AS net FROM new_rows GROUP BY 1) s
     CROSS JOIN LATERAL (SELECT ancestor_id, depth FROM distributor_closure
                          WHERE descendant_id = s.seller_id OFFSET 0) c
     GROUP BY 1, 2;
  ELSIF TG_OP = 'DELETE' THEN
    IF NOT EXISTS (SELECT 1 FROM old_rows WHERE amount <> refunded_amount) THEN
      RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1852142711);
    INSERT INTO team_level_delta (ancestor_id, depth, members, sales)
    SELECT c.ancestor_id, c.depth, 0, -sum(s.net)
      FROM (SELECT seller_id, sum(amount - refunded_amount) AS net FROM old_rows GROUP BY 1) s
     CROSS JOIN LATERAL (SELECT ancestor_id, depth FROM distributor_closure
                          WHERE descendant_id = s.seller_id OFFSET 0) c
     GROUP BY 1, 2;
  ELSE
    IF NOT EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
                    WHERE o.seller_id <> n.seller_id
                       OR o.amount - o.refunded_amount <> n.amount - n.refunded_amount) THEN
      RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1852142711);
    INSERT INTO team_level_delta (ancestor_id, depth, members, sales)
    SELECT c.ancestor_id, c.depth, 0, sum(s.net)
      FROM (SELECT seller_id, sum(net) AS net
              FROM (SELECT seller_id, amount - refunded_amount AS net FROM new_rows
                    UNION ALL
                    SELECT seller_id, -(amount - refunded_amount) FROM old_rows) x
             GROUP BY 1 HAVING sum(net) <> 0) s
     CROSS JOIN LATERAL (SELECT ancestor_id, depth FROM distributor_closure
                          WHERE descendant_id = s.seller_id OFFSET 0) c
     GROUP BY 1, 2;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER orders_team_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION distnet_team_orders();
CREATE TRIGGER orders_team_delete AFTER DELETE ON orders
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION distnet_team_orders();
CREATE TRIGGER orders_team_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION distnet_team_orders();
