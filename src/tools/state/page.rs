//! Paging of `list_session_snapshots` (and of `GET /api/sessions/{session}`).
//!
//! A session's log grows with every execution in it and is never trimmed, so
//! listing one answers a page: by default the first [`DEFAULT_LIMIT`] entries,
//! with `total` and `next_offset` to continue. Entry indexes are dense and
//! 0-based, so an offset is simply the index of the first entry wanted.

use super::fields::EntryFields;
use super::responses::ListSessionSnapshotsResponse;
use crate::sessions::{SessionError, SessionStore};
use crate::tools::ToolError;

/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 1000;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u64 = 10_000;

/// Which entries of a session to list, and which of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPage {
    fields: EntryFields,
    offset: u64,
    limit: u64,
}

impl SnapshotPage {
    /// Checks the arguments before the database is touched.
    pub fn parse(
        fields: Option<&str>,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Self, ToolError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ToolError::invalid_argument(
                "limit",
                format!("{limit} is outside the allowed range 1..={MAX_LIMIT}"),
            ));
        }
        Ok(Self {
            fields: EntryFields::parse(fields)?,
            offset: offset.unwrap_or(0),
            limit,
        })
    }

    /// The page of `session`'s log.
    pub fn read(
        self,
        store: &SessionStore,
        session: String,
    ) -> Result<ListSessionSnapshotsResponse, SessionError> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let (entries, total) = store.entries(&session, self.offset, limit)?;
        let next_offset = entries
            .last()
            .map(|last| last.index.saturating_add(1))
            .filter(|next| *next < total);
        Ok(ListSessionSnapshotsResponse {
            session,
            total,
            next_offset,
            entries: entries
                .into_iter()
                .map(|entry| self.fields.select(entry))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused() {
        for limit in [0, MAX_LIMIT + 1] {
            let error = SnapshotPage::parse(None, None, Some(limit)).expect_err("refused");
            assert!(error.message().contains("`limit`"), "{error}");
        }
        assert!(SnapshotPage::parse(None, Some(5), Some(MAX_LIMIT)).is_ok());
    }
}
