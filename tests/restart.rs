//! Execution records and output survive a server restart on the same state
//! directory.

mod common;

use common::{Server, ServerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_output_survive_a_restart() {
    let state = tempfile::tempdir().expect("state directory");

    let first = ServerOptions::new().state_dir(state.path()).start().await;
    let record = first.run_and_wait("console.log('persisted'); 40 + 2").await;
    assert_eq!(record["status"], "completed", "{record}");
    let id = common::execution_id(&record);
    first.stop().await;

    let second = ServerOptions::new().state_dir(state.path()).start().await;
    let reloaded = second.get(&id).await;
    assert_eq!(reloaded["status"], "completed", "{reloaded}");
    assert_eq!(reloaded["result"], "42", "{reloaded}");
    assert_eq!(reloaded["started_at"], record["started_at"]);
    assert_eq!(reloaded["completed_at"], record["completed_at"]);

    assert_eq!(second.output_lines(&id).await, ["persisted"]);

    let listed = second.list().await;
    let entry = listed
        .iter()
        .find(|summary| summary["execution_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} missing from {listed:?}"));
    assert_eq!(entry["status"], "completed");
}

/// Two servers on one state directory would corrupt each other's records
/// (two MCP clients started with the same settings do this): the second is
/// refused at start-up, by name, and the first serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_state_directory_is_refused() {
    let server = Server::start_with(&["--stateless"]).await;
    let stderr = common::refused_start([
        std::ffi::OsStr::new("--state-dir"),
        server.state_dir().as_os_str(),
        std::ffi::OsStr::new("--stateless"),
    ])
    .await;
    let expected = format!("is in use by another mcp-v8 process (pid {})", server.pid());
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(server.eval("1+1").await, "2");
}

/// `MCP_V8_V8_FLAGS` reaches the workers, even a flag that changes how V8
/// schedules its own work (`--single-threaded` once crashed every worker at
/// boot), and heaps are tied to the flags that made them: one made without
/// the flags is refused as incompatible, not resumed into a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v8_flags_reach_the_workers_and_bind_heaps() {
    let state = tempfile::tempdir().expect("state directory");

    let plain = ServerOptions::new().state_dir(state.path()).start().await;
    let record = plain.run_and_wait("globalThis.kept = 41").await;
    let old_heap = record["heap"].as_str().expect("a heap").to_owned();
    plain.stop().await;

    let flagged = ServerOptions::new()
        .state_dir(state.path())
        .env("MCP_V8_V8_FLAGS", "--single-threaded")
        .start()
        .await;
    let refused = flagged
        .run_and_wait_with(serde_json::json!({ "code": "kept + 1", "heap": old_heap }))
        .await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        common::error_of(&refused).contains("incompatible"),
        "{refused}"
    );

    let record = flagged.run_and_wait("globalThis.kept = 1; kept").await;
    assert_eq!(record["status"], "completed", "{record}");
    let heap = record["heap"].as_str().expect("a heap");
    let resumed = flagged
        .run_and_wait_with(serde_json::json!({ "code": "kept + 1", "heap": heap }))
        .await;
    assert_eq!(resumed["result"], "2", "{resumed}");
    flagged.stop().await;
}
