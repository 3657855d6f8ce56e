-- One row per applied migration. Two consumers starting at once may both
-- apply a migration (its statements are idempotent) and both record it: the
-- copies are one row once merged, and readers use FINAL.
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY version
