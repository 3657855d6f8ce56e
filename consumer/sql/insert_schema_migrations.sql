-- example row: (1, '0001_events', 'abc123', 1632647727)
INSERT INTO schema_migrations (version, name, checksum, applied_at)
