//! Execution records and output survive a server restart on the same state
//! directory.

mod common;

use common::ServerOptions;

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
