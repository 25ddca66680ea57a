-- CSV import: a bad timestamp marks its row as an error instead of failing the whole COPY batch
CREATE FUNCTION distnet_try_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN value::timestamptz;
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$;
