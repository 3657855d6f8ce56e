//! ClickHouse client construction (placeholder).
