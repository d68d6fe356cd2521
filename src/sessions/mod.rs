//! Named sessions (execution logs) and heap tags, kept in sled.
