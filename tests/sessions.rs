//! Sessions and heap tags, through the MCP tools of a stateful server.
//!
//! A server is stateful unless started with `--stateless`. Each test here keeps
//! heap snapshots in its own `--directory-path`; the session database defaults
//! to `sessions` in the state directory.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Server, ServerOptions};
use serde_json::{Value, json};
use tempfile::TempDir;

const STATE_TOOLS: [&str; 6] = [
    "list_sessions",
    "list_session_snapshots",
    "get_heap_tags",
    "set_heap_tags",
    "delete_heap_tags",
    "query_heaps_by_tags",
];

/// A stateful server whose state and heaps live under `root`, so that a later
/// server can reopen them.
async fn stateful_in(root: &Path, extra: &[&str]) -> Server {
    let heaps = root.join("heaps");
    ServerOptions::new()
        .state_dir(root.join("state"))
        .args(["--directory-path", path_str(&heaps)])
        .args(extra.iter().copied())
        .start()
        .await
}

/// A stateful server in a fresh temporary directory, kept alive with it.
async fn stateful() -> (TempDir, Server) {
    let root = tempfile::tempdir().expect("temporary directory");
    let server = stateful_in(root.path(), &[]).await;
    (root, server)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A valid heap name that no snapshot has.
fn heap(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// Runs `code` in `session` to completion and returns the execution record.
async fn run_in_session(server: &Server, session: &str, code: &str) -> Value {
    let record = server
        .run_and_wait_with(json!({ "code": code, "session": session }))
        .await;
    assert_eq!(record["status"], "completed", "{code:?}: {record}");
    record
}

fn heap_of(record: &Value) -> String {
    record["heap"]
        .as_str()
        .unwrap_or_else(|| panic!("a stateful execution leaves a heap: {record}"))
        .to_owned()
}

async fn snapshots(server: &Server, session: &str) -> Vec<Value> {
    let listing = server
        .call("list_session_snapshots", json!({ "session": session }))
        .await;
    assert_eq!(listing["session"], session);
    listing["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries array: {listing}"))
        .clone()
}

async fn sessions(server: &Server) -> Vec<Value> {
    let listing = server.call("list_sessions", json!({})).await;
    listing["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions array: {listing}"))
        .clone()
}

// ---- the tool listing -------------------------------------------------------

#[tokio::test]
async fn a_stateful_server_adds_the_session_and_tag_tools() {
    let (_root, server) = stateful().await;
    let tools = server.client().list_all_tools().await.expect("tools/list");
    let names: BTreeSet<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    for name in STATE_TOOLS
        .iter()
        .chain(&["run_js", "get_execution", "list_executions"])
    {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    assert_eq!(names.len(), 5 + STATE_TOOLS.len(), "{names:?}");

    for tool in tools
        .iter()
        .filter(|tool| STATE_TOOLS.contains(&tool.name.as_ref()))
    {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(
            description.len() > 80,
            "{} needs a real description",
            tool.name
        );
        let schema = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no outputSchema", tool.name));
        assert_eq!(schema.get("type"), Some(&json!("object")), "{}", tool.name);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_stateless_server_has_no_session_tools_and_refuses_state_parameters() {
    let server = Server::start_with(&["--stateless"]).await;
    let tools = server.client().list_all_tools().await.expect("tools/list");
    assert!(
        tools
            .iter()
            .all(|tool| !STATE_TOOLS.contains(&tool.name.as_ref())),
        "stateless servers list only the execution tools"
    );
    let error = server
        .call_err("run_js", json!({ "code": "1", "session": "s" }))
        .await;
    assert!(error.contains("session"), "{error}");
    server.stop().await;
}

// ---- heap tags --------------------------------------------------------------

#[tokio::test]
async fn heap_tags_are_replaced_deleted_and_queried() {
    let (_root, server) = stateful().await;
    // Two stored heaps, in the order queries list them.
    let mut heaps = [
        heap_of(&server.run_and_wait("globalThis.n = 1").await),
        heap_of(&server.run_and_wait("globalThis.n = 2").await),
    ];
    heaps.sort();
    let [one, two] = heaps;

    let empty = server.call("get_heap_tags", json!({ "heap": one })).await;
    assert_eq!(empty, json!({ "heap": one, "tags": {} }));

    let set = server
        .call(
            "set_heap_tags",
            json!({ "heap": one, "tags": { "project": "demo", "step": "1", "owner": "a" } }),
        )
        .await;
    assert_eq!(
        set["tags"],
        json!({ "project": "demo", "step": "1", "owner": "a" })
    );
    let replaced = server
        .call(
            "set_heap_tags",
            json!({ "heap": one, "tags": { "project": "demo", "step": "2" } }),
        )
        .await;
    assert_eq!(replaced["tags"], json!({ "project": "demo", "step": "2" }));
    assert_eq!(
        server.call("get_heap_tags", json!({ "heap": one })).await["tags"],
        json!({ "project": "demo", "step": "2" }),
        "set replaces: owner is gone"
    );
    server
        .call(
            "set_heap_tags",
            json!({ "heap": two, "tags": { "project": "demo", "step": "3" } }),
        )
        .await;

    let query = |tags: Value| {
        let server = &server;
        async move {
            server
                .call("query_heaps_by_tags", json!({ "tags": tags }))
                .await["heaps"]
                .clone()
        }
    };
    assert_eq!(
        query(json!({ "project": "demo" })).await,
        json!([
            { "heap": one, "tags": { "project": "demo", "step": "2" } },
            { "heap": two, "tags": { "project": "demo", "step": "3" } },
        ])
    );
    assert_eq!(
        query(json!({ "project": "demo", "step": "3" })).await,
        json!([{ "heap": two, "tags": { "project": "demo", "step": "3" } }])
    );
    assert_eq!(query(json!({ "project": "Demo" })).await, json!([]));

    let remaining = server
        .call(
            "delete_heap_tags",
            json!({ "heap": one, "keys": ["step", "not-there"] }),
        )
        .await;
    assert_eq!(
        remaining,
        json!({ "heap": one, "tags": { "project": "demo" } })
    );
    let cleared = server
        .call("delete_heap_tags", json!({ "heap": two }))
        .await;
    assert_eq!(cleared, json!({ "heap": two, "tags": {} }));
    assert_eq!(
        query(json!({})).await,
        json!([{ "heap": one, "tags": { "project": "demo" } }]),
        "an empty filter lists every tagged heap"
    );
    server.stop().await;
}

/// Matches come a page at a time, like the other listings.
#[tokio::test]
async fn tag_queries_are_paged() {
    let (_root, server) = stateful().await;
    let mut heaps = Vec::new();
    for n in 0..3 {
        let heap = heap_of(&server.run_and_wait(&format!("globalThis.n = {n}")).await);
        server
            .call(
                "set_heap_tags",
                json!({ "heap": heap, "tags": { "kind": "paged" } }),
            )
            .await;
        heaps.push(heap);
    }
    heaps.sort();
    let query = |paging: Value| {
        let server = &server;
        async move {
            let mut arguments = json!({ "tags": { "kind": "paged" } });
            if let (Some(arguments), Value::Object(paging)) = (arguments.as_object_mut(), paging) {
                arguments.extend(paging);
            }
            server.call("query_heaps_by_tags", arguments).await
        }
    };
    let names = |page: &Value| -> Vec<String> {
        page["heaps"]
            .as_array()
            .map(|heaps| {
                heaps
                    .iter()
                    .filter_map(|heap| heap["heap"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = query(json!({ "limit": 2 })).await;
    assert_eq!(
        (first["total"].clone(), first["next_offset"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(names(&first), heaps[..2]);
    let last = query(json!({ "offset": 2 })).await;
    assert_eq!(last["next_offset"], Value::Null);
    assert_eq!(names(&last), heaps[2..]);
    let all = query(json!({})).await;
    assert_eq!(names(&all), heaps);
    let error = server
        .call_err("query_heaps_by_tags", json!({ "tags": {}, "limit": 0 }))
        .await;
    assert!(error.contains("`limit`"), "{error}");
    server.stop().await;
}

/// Tags go only on heaps the store holds: a mistyped or foreign hash is
/// reported, not tagged (such tags could only ever be found by a query that
/// then names a heap no one can resume).
#[tokio::test]
async fn only_a_stored_heap_can_be_tagged() {
    let (_root, server) = stateful().await;
    let unknown = heap(7);
    let error = server
        .call_err(
            "set_heap_tags",
            json!({ "heap": unknown, "tags": { "k": "v" } }),
        )
        .await;
    assert_eq!(error, format!("heap not found: {unknown}"));
    assert_eq!(
        server
            .call("get_heap_tags", json!({ "heap": unknown }))
            .await["tags"],
        json!({}),
        "nothing was written"
    );
    // Deleting needs no heap: it only ever removes.
    assert_eq!(
        server
            .call("delete_heap_tags", json!({ "heap": unknown }))
            .await,
        json!({ "heap": unknown, "tags": {} })
    );
    let stored = heap_of(&server.run_and_wait("1").await);
    let set = server
        .call(
            "set_heap_tags",
            json!({ "heap": stored, "tags": { "k": "v" } }),
        )
        .await;
    assert_eq!(set["tags"], json!({ "k": "v" }));
    server.stop().await;
}

#[tokio::test]
async fn invalid_heaps_and_tags_are_tool_errors() {
    let (_root, server) = stateful().await;
    for bad in ["", "abc", &"AB".repeat(32), &"g".repeat(64)] {
        let error = server
            .call_err("get_heap_tags", json!({ "heap": bad }))
            .await;
        assert!(error.contains("invalid heap name"), "{bad:?}: {error}");
    }

    let error = server
        .call_err(
            "set_heap_tags",
            json!({ "heap": heap(1), "tags": { "": "v" } }),
        )
        .await;
    assert!(error.contains("empty"), "{error}");
    let too_many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let error = server
        .call_err(
            "set_heap_tags",
            json!({ "heap": heap(1), "tags": too_many }),
        )
        .await;
    assert!(error.contains("at most 64"), "{error}");
    let error = server
        .call_err(
            "set_heap_tags",
            json!({ "heap": heap(1), "tags": { "k": "v".repeat(1025) } }),
        )
        .await;
    assert!(error.contains("1024"), "{error}");
    let error = server
        .call_err(
            "set_heap_tags",
            json!({ "heap": heap(1), "tags": { "n": 1 } }),
        )
        .await;
    assert!(!error.is_empty(), "tag values are strings");
    server
        .call_err("get_heap_tags", json!({ "heap": heap(1), "session": "s" }))
        .await;

    assert_eq!(
        server
            .call("get_heap_tags", json!({ "heap": heap(1) }))
            .await["tags"],
        json!({}),
        "no rejected call wrote anything"
    );
    server.stop().await;
}

// ---- sessions -----------------------------------------------------------------

#[tokio::test]
async fn a_session_logs_its_executions_and_resumes_its_latest_heap() {
    let (_root, server) = stateful().await;
    assert_eq!(sessions(&server).await, Vec::<Value>::new());

    let first = run_in_session(&server, "repl", "globalThis.counter = 1; counter").await;
    assert_eq!(first["session"], "repl");
    let second = run_in_session(&server, "repl", "counter += 1; counter").await;
    assert_eq!(
        second["result"], "2",
        "the second run resumed the first's heap"
    );

    assert_eq!(sessions(&server).await, [json!("repl")]);
    let entries = snapshots(&server, "repl").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    for (index, (entry, record)) in entries.iter().zip([&first, &second]).enumerate() {
        assert_eq!(entry["index"], index, "{entry}");
        assert_eq!(entry["execution_id"], record["execution_id"], "{entry}");
        assert_eq!(entry["status"], "completed", "{entry}");
        assert_eq!(entry["output_heap"], json!(heap_of(record)), "{entry}");
        assert!(entry["timestamp"].is_string(), "{entry}");
    }
    assert_eq!(entries[0]["input_heap"], Value::Null, "a fresh start");
    assert_eq!(entries[1]["input_heap"], entries[0]["output_heap"]);
    assert_eq!(entries[1]["code"], "counter += 1; counter");
    server.stop().await;
}

/// A session's executions run in the order submitted, and the ones waiting
/// for their turn do not hold a worker: an execution outside the session runs
/// at once on the other worker. (A slot used to take the session's next
/// execution off the queue and then wait, idle, for the session's turn.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_backlog_runs_in_order_and_leaves_other_workers_free() {
    let root = tempfile::tempdir().expect("temporary directory");
    let server = stateful_in(root.path(), &["--max-concurrent-executions", "2"]).await;
    let first = server
        .start_js_with(json!({
            "code": "globalThis.order = [0]; await new Promise(r => setTimeout(r, 3000)); order.join()",
            "session": "s",
        }))
        .await;
    server.wait_status(&first, "running").await;
    let mut backlog = Vec::new();
    for n in 1..=4 {
        let code = format!("order.push({n}); order.join()");
        backlog.push(
            server
                .start_js_with(json!({ "code": code, "session": "s" }))
                .await,
        );
    }
    let outside = server.run_and_wait("6 * 7").await;
    assert_eq!(outside["result"], "42", "{outside}");
    assert_eq!(server.get(&first).await["status"], "running");
    for id in &backlog {
        assert_eq!(server.get(id).await["status"], "queued", "{id}");
    }

    let last = server.wait_final(&backlog[3]).await;
    assert_eq!(last["result"], "0,1,2,3,4", "{last}");
}

/// An execution cancelled while it waits its session's turn is logged to
/// the session too, as cancelled and without a heap (it was missing).
#[tokio::test]
async fn an_execution_cancelled_on_the_queue_is_in_its_sessions_log() {
    let (_root, server) = stateful().await;
    // Runs until cancelled, so the second surely waits its turn.
    let first = server
        .start_js_with(json!({
            "code": "await new Promise(r => setTimeout(r, 600000)); 1",
            "session": "s",
        }))
        .await;
    server.wait_status(&first, "running").await;
    let queued = server
        .start_js_with(json!({ "code": "2", "session": "s" }))
        .await;
    assert_eq!(server.cancel(&queued).await["status"], "cancelled");
    assert_eq!(server.cancel(&first).await["status"], "cancelled");

    let started = std::time::Instant::now();
    let entries = loop {
        let entries = snapshots(&server, "s").await;
        if entries.len() == 2 {
            break entries;
        }
        assert!(started.elapsed() < common::DEADLINE, "{entries:?}");
        tokio::time::sleep(common::POLL_INTERVAL).await;
    };
    let cancelled = entries
        .iter()
        .find(|entry| entry["execution_id"] == queued.as_str())
        .unwrap_or_else(|| panic!("no entry for {queued}: {entries:?}"));
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(cancelled["output_heap"].is_null(), "{cancelled}");
    assert_eq!(cancelled["code"], "2", "{cancelled}");
}

#[tokio::test]
async fn an_explicit_heap_overrides_the_sessions_latest() {
    let (_root, server) = stateful().await;
    let first = run_in_session(&server, "s", "globalThis.x = 'first'; x").await;
    run_in_session(&server, "s", "x = 'second'; x").await;

    let record = server
        .run_and_wait_with(json!({ "code": "x", "session": "s", "heap": heap_of(&first) }))
        .await;
    assert_eq!(record["result"], "first", "{record}");
    let entries = snapshots(&server, "s").await;
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["input_heap"], json!(heap_of(&first)));
    server.stop().await;
}

#[tokio::test]
async fn fields_select_what_each_entry_carries() {
    let (_root, server) = stateful().await;
    run_in_session(&server, "s", "1 + 1").await;

    let listing = server
        .call(
            "list_session_snapshots",
            json!({ "session": "s", "fields": "index, output_heap" }),
        )
        .await;
    let entry = &listing["entries"][0];
    let keys: BTreeSet<&str> = entry
        .as_object()
        .expect("entry is an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["execution_id", "status", "index", "output_heap"]),
        "{entry}"
    );

    let error = server
        .call_err(
            "list_session_snapshots",
            json!({ "session": "s", "fields": "index,heap" }),
        )
        .await;
    assert!(
        error.contains("\"heap\""),
        "names the unknown field: {error}"
    );
    for allowed in ["index", "input_heap", "output_heap", "code", "timestamp"] {
        assert!(error.contains(allowed), "lists {allowed}: {error}");
    }
    server.stop().await;
}

/// A session's log is listed a page at a time, with the total and where the
/// next page starts.
#[tokio::test]
async fn session_logs_are_listed_a_page_at_a_time() {
    let (_root, server) = stateful().await;
    for n in 0..5 {
        run_in_session(&server, "s", &format!("{n}")).await;
    }
    let page = |offset: u64, limit: u64| {
        let server = &server;
        async move {
            server
                .call(
                    "list_session_snapshots",
                    json!({ "session": "s", "fields": "index,code", "offset": offset, "limit": limit }),
                )
                .await
        }
    };
    let first = page(0, 2).await;
    assert_eq!(first["total"], 5, "{first}");
    assert_eq!(first["next_offset"], 2, "{first}");
    let codes: Vec<&Value> = first["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| &entry["code"])
        .collect();
    assert_eq!(codes, [&json!("0"), &json!("1")]);
    let last = page(3, 2).await;
    assert_eq!(last["next_offset"], Value::Null, "{last}");
    assert_eq!(last["entries"][1]["index"], 4, "{last}");
    assert_eq!(page(9, 2).await["entries"], json!([]));
    let unpaged = server
        .call("list_session_snapshots", json!({ "session": "s" }))
        .await;
    assert_eq!(unpaged["entries"].as_array().map(Vec::len), Some(5));
    assert_eq!(unpaged["next_offset"], Value::Null);

    let error = server
        .call_err(
            "list_session_snapshots",
            json!({ "session": "s", "limit": 0 }),
        )
        .await;
    assert!(error.contains("`limit`"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn unknown_and_invalid_sessions_are_tool_errors() {
    let (_root, server) = stateful().await;
    let error = server
        .call_err("list_session_snapshots", json!({ "session": "nope" }))
        .await;
    assert!(error.contains("unknown session"), "{error}");
    assert!(error.contains("list_sessions"), "{error}");

    let error = server
        .call_err("list_session_snapshots", json!({ "session": "a\nb" }))
        .await;
    assert!(error.contains("control characters"), "{error}");

    for bad in ["", "a\u{0}b", &"x".repeat(129)] {
        server
            .call_err("run_js", json!({ "code": "1", "session": bad }))
            .await;
    }
    assert_eq!(
        sessions(&server).await,
        Vec::<Value>::new(),
        "no invalid name became a session"
    );
    server.stop().await;
}

#[tokio::test]
async fn run_js_tags_label_the_heap_it_produces() {
    let (_root, server) = stateful().await;
    let record = server
        .run_and_wait_with(json!({ "code": "globalThis.data = [1, 2]; data.length", "tags": { "step": "loaded" } }))
        .await;
    assert_eq!(record["status"], "completed", "{record}");
    let produced = heap_of(&record);

    let tags = server
        .call("get_heap_tags", json!({ "heap": produced }))
        .await;
    assert_eq!(tags["tags"], json!({ "step": "loaded" }));
    let found = server
        .call(
            "query_heaps_by_tags",
            json!({ "tags": { "step": "loaded" } }),
        )
        .await;
    assert_eq!(
        found["heaps"],
        json!([{ "heap": produced, "tags": { "step": "loaded" } }])
    );

    let resumed = server
        .run_and_wait_with(json!({ "code": "data.join('+')", "heap": produced }))
        .await;
    assert_eq!(resumed["result"], "1+2", "{resumed}");
    server.stop().await;
}

// ---- persistence and configuration -----------------------------------------------

#[tokio::test]
async fn sessions_and_tags_survive_a_restart() {
    let root = tempfile::tempdir().expect("temporary directory");
    let server = stateful_in(root.path(), &[]).await;
    let first = run_in_session(&server, "kept", "globalThis.n = 41; n").await;
    let tagged = heap_of(&first);
    server
        .call(
            "set_heap_tags",
            json!({ "heap": tagged, "tags": { "k": "v" } }),
        )
        .await;
    server.stop().await;

    let server = stateful_in(root.path(), &[]).await;
    assert_eq!(sessions(&server).await, [json!("kept")]);
    let entries = snapshots(&server, "kept").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["output_heap"], json!(heap_of(&first)));
    assert_eq!(
        server
            .call("get_heap_tags", json!({ "heap": tagged }))
            .await["tags"],
        json!({ "k": "v" })
    );
    let record = run_in_session(&server, "kept", "n + 1").await;
    assert_eq!(
        record["result"], "42",
        "the session resumes after a restart"
    );
    assert_eq!(snapshots(&server, "kept").await.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn the_session_database_defaults_to_the_state_directory_and_can_be_moved() {
    let root = tempfile::tempdir().expect("temporary directory");
    let server = stateful_in(root.path(), &[]).await;
    run_in_session(&server, "s", "1").await;
    server.stop().await;
    assert!(root.path().join("state/sessions").is_dir());

    let elsewhere = tempfile::tempdir().expect("temporary directory");
    let db = elsewhere.path().join("db");
    let server = stateful_in(elsewhere.path(), &["--session-db-path", path_str(&db)]).await;
    assert_eq!(sessions(&server).await, Vec::<Value>::new());
    run_in_session(&server, "moved", "1").await;
    server.stop().await;
    assert!(db.is_dir(), "the database is where --session-db-path says");
    assert!(!elsewhere.path().join("state/sessions").exists());
}

/// What the server keeps (records, console output, sessions with their
/// code, heaps) is its user's alone, whatever the umask: directories it
/// creates are 0700 and files 0600.
#[tokio::test]
async fn state_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let root = tempfile::tempdir().expect("temporary directory");
    let server = stateful_in(root.path(), &[]).await;
    let record = run_in_session(&server, "private", "console.log('secret'); 'result'").await;
    server.stop().await;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let state = root.path().join("state");
    for dir in [
        state.clone(),
        state.join("output"),
        state.join("sessions"),
        root.path().join("heaps"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    let id = record["execution_id"].as_str().expect("an id");
    for file in [
        state.join("executions.jsonl"),
        state.join("output").join(format!("{id}.log")),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// A session database another server holds is refused in words, not with
/// the lock's raw error.
#[tokio::test]
async fn a_session_database_in_use_is_refused_clearly() {
    let root = tempfile::tempdir().expect("temporary directory");
    let db = root.path().join("db");
    let first = stateful_in(root.path(), &["--session-db-path", path_str(&db)]).await;
    let other = tempfile::tempdir().expect("temporary directory");
    let stderr = common::refused_start([
        "--state-dir",
        path_str(&other.path().join("state")),
        "--directory-path",
        path_str(&other.path().join("heaps")),
        "--session-db-path",
        path_str(&db),
    ])
    .await;
    assert!(
        stderr.contains(&format!(
            "the session database {} is in use by another mcp-v8 process",
            db.display()
        )),
        "{stderr}"
    );
    first.stop().await;
}
