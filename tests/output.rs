//! Console capture and paging through it (`get_execution_output`).

mod common;

use common::Server;
use serde_json::{Value, json};

/// Prints `line 0` … `line 999`, one per line.
const THOUSAND_LINES: &str = "for (let i = 0; i < 1000; i++) console.log('line ' + i)";

fn thousand_lines_text() -> String {
    (0..1000).map(|i| format!("line {i}\n")).collect()
}

fn number(page: &Value, field: &str) -> u64 {
    page[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not a number in {page}"))
}

fn data(page: &Value) -> &str {
    page["data"].as_str().expect("page data is a string")
}

/// Runs [`THOUSAND_LINES`] to completion and returns its id.
async fn run_thousand_lines(server: &Server) -> String {
    let record = server.run_and_wait(THOUSAND_LINES).await;
    assert_eq!(record["status"], "completed", "{record}");
    common::execution_id(&record)
}

#[tokio::test]
async fn console_table_draws_a_box() {
    let server = Server::start().await;
    let record = server
        .run_and_wait("console.table([{ a: 1, b: 'x' }, { a: 22 }])")
        .await;
    assert_eq!(record["status"], "completed", "{record}");
    let id = common::execution_id(&record);
    assert_eq!(
        server.output_lines(&id).await,
        [
            "┌─────────┬────┬─────┐",
            "│ (index) │ a  │  b  │",
            "├─────────┼────┼─────┤",
            "│    0    │ 1  │ 'x' │",
            "│    1    │ 22 │     │",
            "└─────────┴────┴─────┘",
        ]
    );
}

/// A Map or Set is tabled by iteration order, as in Node (it used to be an
/// empty table: they have no own keys).
#[tokio::test]
async fn console_table_lists_maps_and_sets() {
    let server = Server::start().await;
    let record = server
        .run_and_wait(
            "console.table(new Map([['a', { x: 1 }], [2, 'two']])); console.table(new Set(['s']))",
        )
        .await;
    assert_eq!(record["status"], "completed", "{record}");
    let id = common::execution_id(&record);
    assert_eq!(
        server.output_lines(&id).await,
        [
            "┌───────────────────┬─────┬──────────┐",
            "│ (iteration index) │ Key │  Values  │",
            "├───────────────────┼─────┼──────────┤",
            "│         0         │ 'a' │ { x: 1 } │",
            "│         1         │  2  │  'two'   │",
            "└───────────────────┴─────┴──────────┘",
            "┌───────────────────┬────────┐",
            "│ (iteration index) │ Values │",
            "├───────────────────┼────────┤",
            "│         0         │  's'   │",
            "└───────────────────┴────────┘",
        ]
    );
}

#[tokio::test]
async fn console_log_applies_format_specifiers() {
    let server = Server::start().await;
    let record = server
        .run_and_wait(
            "console.log('%s is %d', 'x', 42); const c = {}; c.c = c; \
             console.log('%j %j %j', { a: 1 }, c, { b: 1n })",
        )
        .await;
    assert_eq!(record["status"], "completed", "{record}");
    let id = common::execution_id(&record);
    assert_eq!(
        server.output_lines(&id).await,
        [
            "x is 42",
            // A cycle is `[Circular]` as in Node; any other failure says what.
            r#"{"a":1} [Circular] [TypeError: Do not know how to serialize a BigInt]"#
        ]
    );
}

#[tokio::test]
async fn console_log_inspects_objects_to_depth_two() {
    let server = Server::start().await;
    let record = server.run_and_wait("console.log({a:{b:{c:{d:1}}}})").await;
    assert_eq!(record["status"], "completed", "{record}");
    let id = common::execution_id(&record);
    let output = server.output(&id).await;
    assert!(output.contains("b:"), "{output:?}");
    assert!(output.contains("[Object]"), "{output:?}");
    assert!(!output.contains("d:"), "depth 3 was not elided: {output:?}");
}

#[tokio::test]
async fn line_pages_reassemble_the_output_with_consistent_positions() {
    let server = Server::start().await;
    let id = run_thousand_lines(&server).await;
    let expected = thousand_lines_text();

    let mut text = String::new();
    let mut line_offset = 0;
    let mut pages = 0;
    loop {
        let page = server
            .output_page(
                &id,
                json!({ "line_offset": line_offset, "line_limit": 300 }),
            )
            .await;
        pages += 1;
        let end_line = (line_offset + 300).min(1000);

        assert_eq!(page["execution_id"], id.as_str());
        assert_eq!(page["status"], "completed");
        assert_eq!(number(&page, "total_lines"), 1000);
        assert_eq!(number(&page, "total_bytes"), expected.len() as u64);
        assert_eq!(number(&page, "start_line"), line_offset, "{page}");
        assert_eq!(number(&page, "end_line"), end_line, "{page}");
        assert_eq!(number(&page, "next_line_offset"), end_line, "{page}");
        assert_eq!(page["has_more"], end_line < 1000, "{page}");

        // Byte positions describe the same slice.
        let start_byte = number(&page, "start_byte");
        let end_byte = number(&page, "end_byte");
        assert_eq!(start_byte, text.len() as u64, "{page}");
        assert_eq!(end_byte - start_byte, data(&page).len() as u64, "{page}");
        assert_eq!(number(&page, "next_byte_offset"), end_byte, "{page}");

        text.push_str(data(&page));
        if page["has_more"] != true {
            break;
        }
        line_offset = number(&page, "next_line_offset");
    }

    assert_eq!(pages, 4);
    assert_eq!(text, expected);
}

#[tokio::test]
async fn byte_pages_reassemble_the_output_with_consistent_positions() {
    let server = Server::start().await;
    let id = run_thousand_lines(&server).await;
    let expected = thousand_lines_text();

    let mut text = String::new();
    let mut byte_offset = 0;
    loop {
        let page = server
            .output_page(
                &id,
                json!({ "byte_offset": byte_offset, "byte_limit": 4096 }),
            )
            .await;
        let start_byte = number(&page, "start_byte");
        let end_byte = number(&page, "end_byte");
        let page_data = data(&page);

        assert_eq!(start_byte, byte_offset, "{page}");
        assert!(page_data.len() <= 4096, "page of {} bytes", page_data.len());
        assert!(!page_data.is_empty(), "empty page before the end: {page}");
        assert_eq!(end_byte - start_byte, page_data.len() as u64, "{page}");
        assert_eq!(number(&page, "next_byte_offset"), end_byte, "{page}");
        assert_eq!(number(&page, "total_bytes"), expected.len() as u64);
        assert_eq!(number(&page, "total_lines"), 1000);
        assert_eq!(page["has_more"], end_byte < expected.len() as u64, "{page}");

        // Line positions count the newlines before each end of the slice.
        let newlines_before = |byte: u64| {
            let prefix = &expected.as_bytes()[..usize::try_from(byte).expect("offset fits")];
            prefix.iter().filter(|&&b| b == b'\n').count() as u64
        };
        assert_eq!(
            number(&page, "start_line"),
            newlines_before(start_byte),
            "{page}"
        );

        text.push_str(page_data);
        if page["has_more"] != true {
            break;
        }
        byte_offset = end_byte;
    }

    assert_eq!(text, expected);
}

/// A log larger than those read in place (256 KiB), which is read on the
/// blocking pool, pages the same way.
#[tokio::test]
async fn a_large_log_pages_like_a_small_one() {
    let server = Server::start().await;
    let record = server
        .run_and_wait("for (let i = 0; i < 400; i++) console.log(String(i).padStart(1000, '.'))")
        .await;
    assert_eq!(record["status"], "completed", "{record}");
    let id = common::execution_id(&record);
    let expected: String = (0..400).map(|i| format!("{i:.>1000}\n")).collect();
    assert!(expected.len() > 256 * 1024);

    let mut text = String::new();
    for page_number in 0..4 {
        let page = server
            .output_page(
                &id,
                json!({ "line_offset": page_number * 100, "line_limit": 100 }),
            )
            .await;
        assert_eq!(number(&page, "total_lines"), 400, "{page}");
        assert_eq!(number(&page, "total_bytes"), expected.len() as u64);
        assert_eq!(page["has_more"], page_number < 3, "{page}");
        text.push_str(data(&page));
    }
    assert_eq!(text, expected);
}

#[tokio::test]
async fn mixing_line_and_byte_parameters_is_a_tool_error() {
    let server = Server::start().await;
    let id = run_thousand_lines(&server).await;
    let message = server
        .call_err(
            "get_execution_output",
            json!({ "execution_id": id, "line_offset": 0, "byte_limit": 10 }),
        )
        .await;
    assert!(
        message.contains("line") && message.contains("byte"),
        "{message}"
    );
}
