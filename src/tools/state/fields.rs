//! The `fields` selection of `list_session_snapshots`.
//!
//! `code` can be long and a session can hold many executions, so a model that
//! only needs the heaps can leave the code out. `execution_id` and `status`
//! are always included: they are short, and an entry without them cannot be
//! followed up or judged (a failed execution's heap is rarely wanted). Naming
//! them in `fields` is accepted, so a model that lists them is not punished.

use super::responses::SessionSnapshot;
use crate::sessions::SessionEntry;
use crate::tools::ToolError;

/// The fields `fields` may select.
const SELECTABLE: [&str; 5] = ["index", "input_heap", "output_heap", "code", "timestamp"];
/// The fields every entry carries, which `fields` may name too.
const ALWAYS: [&str; 2] = ["execution_id", "status"];

/// Which optional fields each listed entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryFields {
    index: bool,
    input_heap: bool,
    output_heap: bool,
    code: bool,
    timestamp: bool,
}

impl EntryFields {
    const ALL: Self = Self {
        index: true,
        input_heap: true,
        output_heap: true,
        code: true,
        timestamp: true,
    };
    const NONE: Self = Self {
        index: false,
        input_heap: false,
        output_heap: false,
        code: false,
        timestamp: false,
    };

    /// Parses the comma-separated list (spaces around names are ignored);
    /// `None` selects every field.
    pub fn parse(list: Option<&str>) -> Result<Self, ToolError> {
        let Some(list) = list else {
            return Ok(Self::ALL);
        };
        let mut fields = Self::NONE;
        let mut named_any = false;
        for name in list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            named_any = true;
            match name {
                "index" => fields.index = true,
                "input_heap" => fields.input_heap = true,
                "output_heap" => fields.output_heap = true,
                "code" => fields.code = true,
                "timestamp" => fields.timestamp = true,
                _ if ALWAYS.contains(&name) => {}
                unknown => {
                    return Err(invalid(format!("unknown field {unknown:?}; {}", allowed())));
                }
            }
        }
        if named_any {
            Ok(fields)
        } else {
            Err(invalid(format!(
                "no field named; omit `fields` for every field, or {}",
                allowed()
            )))
        }
    }

    /// `entry` with only the selected fields.
    pub fn select(self, entry: SessionEntry) -> SessionSnapshot {
        SessionSnapshot {
            execution_id: entry.execution_id,
            status: entry.status,
            index: self.index.then_some(entry.index),
            input_heap: self.input_heap.then_some(entry.input_heap),
            output_heap: self.output_heap.then_some(entry.output_heap),
            code: self.code.then_some(entry.code),
            timestamp: self.timestamp.then_some(entry.timestamp),
        }
    }
}

fn invalid(message: String) -> ToolError {
    ToolError::invalid_argument("fields", message)
}

fn allowed() -> String {
    format!(
        "choose among {} (comma-separated); {} are always included",
        SELECTABLE.join(", "),
        ALWAYS.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::executor::ExecutionStatus;

    fn entry() -> SessionEntry {
        SessionEntry {
            index: 3,
            execution_id: "id".to_owned(),
            input_heap: None,
            output_heap: Some("ab".repeat(32)),
            code: "1 + 1".to_owned(),
            status: ExecutionStatus::Completed,
            timestamp: Utc::now(),
        }
    }

    #[test]
    fn default_selects_everything() {
        assert_eq!(EntryFields::parse(None).ok(), Some(EntryFields::ALL));
        let json = serde_json::to_value(EntryFields::ALL.select(entry())).expect("json");
        for field in SELECTABLE.iter().chain(&ALWAYS) {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        assert!(json["input_heap"].is_null(), "selected but none: null");
    }

    #[test]
    fn a_selection_keeps_only_the_named_fields() {
        let fields = EntryFields::parse(Some(" output_heap , index,status,")).expect("valid");
        let json = serde_json::to_value(fields.select(entry())).expect("json");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["execution_id", "index", "output_heap", "status"]);
        assert_eq!(json["index"], 3);
    }

    #[test]
    fn unknown_fields_name_themselves_and_the_allowed_ones() {
        let error = EntryFields::parse(Some("index,heap")).expect_err("unknown");
        let message = error.message();
        assert!(message.contains("`fields`"), "{message}");
        assert!(message.contains("\"heap\""), "{message}");
        for name in SELECTABLE {
            assert!(message.contains(name), "{message}");
        }
    }

    #[test]
    fn an_empty_list_is_refused() {
        for list in ["", " , "] {
            let error = EntryFields::parse(Some(list)).expect_err("empty");
            assert!(error.message().contains("omit `fields`"), "{error}");
        }
    }
}
