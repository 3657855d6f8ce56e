-- The database is created if missing, before any migration runs.
CREATE DATABASE IF NOT EXISTS {database}
