-- Raw webhook bodies are large JSON documents: LZ4 compresses them several times faster than the default pglz
-- (the request path waits for this insert). Drizzle cannot declare a column's compression, hence this
-- custom migration. Servers built without LZ4 (and embedded PGlite) keep the default.
DO $$
BEGIN
  ALTER TABLE webhook_deliveries ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
  RAISE NOTICE 'lz4 is not available: webhook bodies keep the default compression';
END $$;
