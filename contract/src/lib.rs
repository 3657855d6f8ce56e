//! The Eye's wire contract (placeholder, being written).
