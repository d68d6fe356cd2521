//! Paging of the listings that grow without a bound a model would want in one
//! answer: `list_executions` (up to `executions.retain_count` records),
//! `list_session_snapshots` (a session's whole log) and `query_heaps_by_tags`
//! (every tagged heap). All take the same `offset` and `limit` and answer
//! `total` and `next_offset`, and so do their HTTP routes.

use crate::tools::ToolError;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: u64 = 1000;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u64 = 10_000;

/// Which part of a listing to answer: up to `limit` items from position
/// `offset` (0-based) on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub offset: u64,
    pub limit: u64,
}

impl Paging {
    /// The defaults for what is not given; a `limit` outside
    /// `1..=MAX_LIMIT` is refused.
    pub fn parse(offset: Option<u64>, limit: Option<u64>) -> Result<Self, ToolError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ToolError::invalid_argument(
                "limit",
                format!("{limit} is outside the allowed range 1..={MAX_LIMIT}"),
            ));
        }
        Ok(Self {
            offset: offset.unwrap_or(0),
            limit,
        })
    }

    /// `limit` as a count of items to take.
    pub fn take(self) -> usize {
        usize::try_from(self.limit).unwrap_or(usize::MAX)
    }

    /// Where the page after one that ends just before `end` starts; `None`
    /// when that is past the last of `total` items.
    pub fn next_offset(end: u64, total: u64) -> Option<u64> {
        (end < total).then_some(end)
    }

    /// This page of `items`, the whole listing, and the next page's offset.
    pub fn slice<T>(self, items: Vec<T>) -> (Vec<T>, u64, Option<u64>) {
        let total = items.len() as u64;
        let page: Vec<T> = items
            .into_iter()
            .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(self.take())
            .collect();
        let end = self.offset.saturating_add(page.len() as u64);
        let next = if page.is_empty() {
            None
        } else {
            Self::next_offset(end, total)
        };
        (page, total, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused() {
        for limit in [0, MAX_LIMIT + 1] {
            let error = Paging::parse(None, Some(limit)).expect_err("refused");
            assert!(error.message().contains("`limit`"), "{error}");
        }
        assert_eq!(
            Paging::parse(None, None).ok(),
            Some(Paging {
                offset: 0,
                limit: DEFAULT_LIMIT
            })
        );
    }

    #[test]
    fn slices_say_where_the_next_page_starts() {
        let items: Vec<u32> = (0..5).collect();
        let page = |offset, limit| Paging { offset, limit }.slice(items.clone());
        assert_eq!(page(0, 2), (vec![0, 1], 5, Some(2)));
        assert_eq!(page(3, 2), (vec![3, 4], 5, None));
        assert_eq!(page(4, 10), (vec![4], 5, None));
        assert_eq!(page(7, 10), (vec![], 5, None));
    }
}
