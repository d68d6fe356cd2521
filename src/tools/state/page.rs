//! Paging of `list_session_snapshots` (and of `GET /api/sessions/{session}`).
//!
//! A session's log grows with every execution in it and is never trimmed, so
//! listing one answers a page (see [`Paging`]). Entry indexes are dense and
//! 0-based, so an offset is simply the index of the first entry wanted, and
//! only the page is read from the database.

use super::fields::EntryFields;
use super::responses::ListSessionSnapshotsResponse;
use crate::sessions::{SessionError, SessionStore};
use crate::tools::ToolError;
use crate::tools::paging::Paging;

/// Which entries of a session to list, and which of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPage {
    fields: EntryFields,
    paging: Paging,
}

impl SnapshotPage {
    /// Checks the arguments before the database is touched.
    pub fn parse(
        fields: Option<&str>,
        offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Self, ToolError> {
        Ok(Self {
            paging: Paging::parse(offset, limit)?,
            fields: EntryFields::parse(fields)?,
        })
    }

    /// The page of `session`'s log.
    pub fn read(
        self,
        store: &SessionStore,
        session: String,
    ) -> Result<ListSessionSnapshotsResponse, SessionError> {
        let (entries, total) = store.entries(&session, self.paging.offset, self.paging.take())?;
        let next_offset = entries
            .last()
            .and_then(|last| Paging::next_offset(last.index.saturating_add(1), total));
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
