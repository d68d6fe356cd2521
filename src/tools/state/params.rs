//! Parameters of the session and tag tools.
//!
//! As in [`crate::tools::RunJsParams`], the field doc comments are the schema
//! descriptions a model reads, one paragraph each, and unknown fields are
//! rejected so that a misspelt parameter is reported rather than ignored.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use utoipa::ToSchema;

/// Parameters of `list_session_snapshots`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSessionSnapshotsParams {
    /// The session's name, as given to run_js `session` (and listed by list_sessions).
    pub session: String,
    /// Comma-separated fields to include in each entry, among index, input_heap, output_heap, code and timestamp (for example "index,output_heap"); execution_id and status are always included. Omit for every field.
    pub fields: Option<String>,
    /// Index of the first entry to list, 0-based; default 0. To continue, pass the previous answer's next_offset.
    pub offset: Option<u64>,
    /// Most entries to list; default 1000, at most 10000.
    #[schemars(range(min = 1, max = 10000))]
    pub limit: Option<u64>,
}

/// Parameters of the tools that address one heap snapshot.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeapParams {
    /// The heap snapshot's name: 64 lowercase hexadecimal characters, as get_execution reports it in `heap` and list_session_snapshots in input_heap/output_heap.
    pub heap: String,
}

/// Parameters of `set_heap_tags`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetHeapTagsParams {
    /// The heap snapshot's name: 64 lowercase hexadecimal characters, as get_execution reports it in `heap` and list_session_snapshots in input_heap/output_heap.
    pub heap: String,
    /// The heap's new tags, replacing all current ones: an object of string values, e.g. {"project": "demo", "step": "data loaded"}. Keys 1 to 128 characters, values at most 1024, at most 64 tags; an empty object removes every tag.
    pub tags: BTreeMap<String, String>,
}

/// Parameters of `delete_heap_tags`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteHeapTagsParams {
    /// The heap snapshot's name: 64 lowercase hexadecimal characters, as get_execution reports it in `heap` and list_session_snapshots in input_heap/output_heap.
    pub heap: String,
    /// Keys of the tags to remove; keys the heap does not carry are ignored. Omit to remove every tag.
    pub keys: Option<Vec<String>>,
}

/// Parameters of `query_heaps_by_tags`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[derive(ToSchema)]
pub struct QueryHeapsByTagsParams {
    /// Key/value pairs a heap's tags must all include (exact, case-sensitive), e.g. {"project": "demo"}. An empty object matches every tagged heap.
    pub tags: BTreeMap<String, String>,
    /// Position of the first match to list, 0-based; default 0. To continue, pass the previous answer's next_offset.
    pub offset: Option<u64>,
    /// Most matches to list; default 1000, at most 10000.
    #[schemars(range(min = 1, max = 10000))]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_rejected() {
        let parsed = serde_json::from_value::<SetHeapTagsParams>(serde_json::json!({
            "heap": "ab",
            "tags": {},
            "tag": {},
        }));
        assert!(parsed.is_err());
    }

    #[test]
    fn tag_values_must_be_strings() {
        let parsed = serde_json::from_value::<QueryHeapsByTagsParams>(serde_json::json!({
            "tags": { "n": 1 },
        }));
        assert!(parsed.is_err());
    }
}
