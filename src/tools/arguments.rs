//! [`Parameters`]: a tool's arguments, read so that a wrong one is named.
//!
//! rmcp's own `Parameters` reports serde's words alone: `invalid type: string
//! "x", expected u64`, and the model is left to guess which of its arguments
//! that was. This one reads the arguments through `serde_path_to_error` (as
//! the HTTP API's JSON bodies are read, by axum) and says where:
//! `invalid argument `line_limit`: invalid type: ...`.
//!
//! The `#[tool]` macro finds a tool's input schema by this type's name, so it
//! is called `Parameters` too, and its schema is its content's.

use rmcp::ErrorData;
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// rmcp's router turns an `invalid_params` error that begins with these words
/// into a tool result with `isError: true` (MCP's rule since 2025-11-25:
/// input validation errors are tool execution errors, so that the model sees
/// them and corrects its call), and leaves any other as a JSON-RPC error.
const UNREADABLE_ARGUMENTS: &str = "failed to deserialize parameters:";

/// The arguments of a tool call, as `P`.
#[derive(Debug)]
pub struct Parameters<P>(pub P);

impl<P: JsonSchema> JsonSchema for Parameters<P> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        P::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        P::json_schema(generator)
    }
}

impl<S, P: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<P> {
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, ErrorData> {
        let arguments = Value::Object(context.arguments.take().unwrap_or_default());
        read(arguments)
            .map(Self)
            .map_err(|message| ErrorData::invalid_params(message, None))
    }
}

/// `arguments` as `P`, or what is wrong with them, naming the argument (by
/// its path, `tags.env`, when it is nested) unless serde names it already (a
/// missing or an unknown field).
fn read<P: DeserializeOwned>(arguments: Value) -> Result<P, String> {
    serde_path_to_error::deserialize(arguments).map_err(|error| {
        let path = error.path().to_string();
        let problem = error.into_inner().to_string();
        if path == "." || problem.starts_with("unknown field ") {
            format!("{UNREADABLE_ARGUMENTS} {problem}")
        } else {
            format!("{UNREADABLE_ARGUMENTS} invalid argument `{path}`: {problem}")
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        code: String,
        line_limit: Option<u64>,
        tags: Option<BTreeMap<String, String>>,
    }

    fn problem(arguments: Value) -> String {
        read::<Args>(arguments).expect_err("unreadable")
    }

    #[test]
    fn a_wrong_argument_is_named() {
        let message = problem(json!({ "code": "1", "line_limit": "x" }));
        assert_eq!(
            message,
            "failed to deserialize parameters: invalid argument `line_limit`: \
             invalid type: string \"x\", expected u64"
        );
    }

    #[test]
    fn a_nested_argument_is_named_by_its_path() {
        let message = problem(json!({ "code": "1", "tags": { "env": 1 } }));
        assert!(
            message.contains("invalid argument `tags.env`: invalid type: integer `1`"),
            "{message}"
        );
    }

    #[test]
    fn missing_and_unknown_fields_keep_serde_s_words() {
        assert_eq!(
            problem(json!({})),
            "failed to deserialize parameters: missing field `code`"
        );
        let unknown = problem(json!({ "code": "1", "timeout_secs": 5 }));
        assert!(
            unknown.starts_with("failed to deserialize parameters: unknown field `timeout_secs`"),
            "{unknown}"
        );
    }
}
