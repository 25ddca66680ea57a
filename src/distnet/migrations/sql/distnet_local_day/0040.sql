-- The business day of a moment: its date in the platform's time zone (DISTNET_TIME_ZONE). Every
-- connection distnet opens sets distnet.time_zone from the settings (db.make_engine); another
-- client (psql) gets the default zone. A SQL function, so the planner inlines it.
CREATE FUNCTION distnet_local_day(at timestamptz) RETURNS date LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT (at AT TIME ZONE coalesce(nullif(current_setting('distnet.time_zone', true), ''), 'Asia/Shanghai'))::date
$$;
