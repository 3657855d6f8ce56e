//! Shared service plumbing (placeholder, being written).
pub mod clickhouse;
