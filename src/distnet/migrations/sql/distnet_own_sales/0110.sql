-- A beneficiary's own net sales over the `days` business days up to and including the day of
-- `at` (an order's placed_at): what a plan's per-level qualification (issue 18) is judged on.
-- Reads the folded rows and the appended deltas (ranks.service.SALES).
CREATE FUNCTION distnet_own_sales(beneficiary bigint, at timestamptz, days int) RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT coalesce(sum(personal), 0)::bigint
    FROM (SELECT personal FROM sales_daily
           WHERE distributor_id = beneficiary AND day > distnet_local_day(at) - days AND day <= distnet_local_day(at)
          UNION ALL
          SELECT personal FROM sales_delta
           WHERE distributor_id = beneficiary AND day > distnet_local_day(at) - days AND day <= distnet_local_day(at)) s
$$;
