//! Ending executions from outside: cancellation, and a worker process dying.

mod common;

use common::{Server, ServerOptions, error_of};
use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
use rmcp::service::PeerRequestOptions;
use serde_json::json;

/// Runs forever; the longest timeout the default server allows (30 s) keeps
/// the limit out of these tests.
fn endless() -> serde_json::Value {
    json!({ "code": "while(true){}", "execution_timeout_secs": 30 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_running_execution() {
    let server = Server::start().await;
    let id = server.start_js_with(endless()).await;
    server.wait_status(&id, "running").await;

    let cancelled = server.cancel(&id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["error"],
        "cancelled on request (cancel_execution)"
    );
    assert_eq!(cancelled["execution_id"], id.as_str());
    assert!(cancelled["completed_at"].is_string(), "{cancelled}");
    assert_eq!(server.get(&id).await["status"], "cancelled");

    // Cancelling again changes nothing.
    assert_eq!(server.cancel(&id).await["status"], "cancelled");
    assert_eq!(server.eval("1+1").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_queued_execution() {
    let server = Server::start_with(&["--max-concurrent-executions", "1"]).await;
    let running = server.start_js_with(endless()).await;
    server.wait_status(&running, "running").await;

    let response = server
        .call("run_js", json!({ "code": "console.log('ran'); 1" }))
        .await;
    assert_eq!(response["status"], "queued", "{response}");
    let queued = common::execution_id(&response);

    let cancelled = server.cancel(&queued).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(server.get(&running).await["status"], "running");

    let cancelled = server.cancel(&running).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    // The cancelled queued execution never ran, even once a worker was free.
    assert_eq!(server.eval("2+2").await, "4");
    let record = server.get(&queued).await;
    assert_eq!(record["status"], "cancelled", "{record}");
    assert!(record.get("result").is_none(), "{record}");
    assert_eq!(server.output(&queued).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_fails_its_execution_and_is_replaced() {
    let server = Server::start_with(&["--max-concurrent-executions", "1"]).await;
    let id = server.start_js_with(endless()).await;
    server.wait_status(&id, "running").await;

    let workers = common::poll_until("a worker process", || {
        let pids = server.worker_pids();
        (!pids.is_empty()).then_some(pids)
    })
    .await;
    for pid in workers {
        common::kill_hard(pid);
    }

    let record = server.wait_final(&id).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(error_of(&record).contains("worker"), "{record}");

    assert_eq!(server.eval("1+1").await, "2");
    assert_eq!(server.eval("'again'").await, "again");
}

/// A worker killed between executions is noticed only when the next one is
/// handed to it; that execution has not started and must not be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_while_idle_loses_no_execution() {
    for mode in [&["--stateless"][..], &[][..]] {
        let server =
            Server::start_with(&[mode, &["--max-concurrent-executions", "1"]].concat()).await;
        assert_eq!(server.eval("1+1").await, "2", "{mode:?}");
        let workers = server.worker_pids();
        assert_eq!(workers.len(), 1, "{mode:?}: {workers:?}");
        common::kill_hard(workers[0]);
        common::poll_until("the killed worker to exit", || {
            (!server.worker_pids().contains(&workers[0])).then_some(())
        })
        .await;

        assert_eq!(
            server.eval("'still served'").await,
            "still served",
            "{mode:?}"
        );
        let replaced = server.worker_pids();
        assert!(
            replaced.len() == 1 && replaced != workers,
            "{mode:?}: {workers:?} then {replaced:?}"
        );
    }
}

/// A package upgrade replaces or removes the binary under a running server.
/// A worker that dies afterwards is replaced from the server's own binary,
/// not from the path it was started by: no failed executions, no other
/// version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_workers_are_replaced_after_the_binary_is_removed() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let binary = dir.path().join("mcp-v8");
    std::fs::copy(common::BIN, &binary).expect("copy the binary");
    let server = ServerOptions::new()
        .binary(&binary)
        .args(["--stateless", "--max-concurrent-executions", "1"])
        .start()
        .await;
    let workers = server.one_serving_worker().await;
    std::fs::remove_file(&binary).expect("remove the binary");

    common::kill_hard(workers[0]);
    common::poll_until("the killed worker to exit", || {
        (!server.worker_pids().contains(&workers[0])).then_some(())
    })
    .await;
    assert_eq!(server.eval("'still served'").await, "still served");
    let replaced = server.worker_pids();
    assert!(
        replaced.len() == 1 && replaced != workers,
        "{workers:?} then {replaced:?}"
    );
}

/// Resident memory of a process, in bytes (`VmRSS` in /proc).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// A cancelled queued execution lets go of its code at once, not when a
/// worker reaches its place in the queue: the queue bound also bounds memory.
/// (Each cancelled megabyte of code stayed in memory behind a busy worker.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_queued_executions_frees_their_code() {
    let server = Server::start_with(&["--stateless", "--max-concurrent-executions", "1"]).await;
    let busy = server.start_js_with(endless()).await;
    server.wait_status(&busy, "running").await;
    // One megabyte of code that would print one number.
    let code = format!("/*{}*/ 1", "x".repeat(1_000_000 - 8));
    let before = resident_bytes(server.pid());
    for _ in 0..150 {
        let id = server.start_js(&code).await;
        assert_eq!(server.cancel(&id).await["status"], "cancelled");
    }
    let grown = resident_bytes(server.pid()).saturating_sub(before);
    assert!(grown < 60 << 20, "the server grew by {} MB", grown >> 20);
    server.cancel(&busy).await;
}

/// A client that cancels a `run_js` call still waiting (`wait_ms`) never
/// learns the execution's id: the execution is cancelled with the call,
/// instead of holding a worker until its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_waiting_run_js_call_cancels_its_execution() {
    let server = Server::start_with(&["--stateless"]).await;
    let arguments = json!({ "code": "while (true) {}", "wait_ms": 20_000 })
        .as_object()
        .cloned()
        .expect("an object");
    let call = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("run_js").with_arguments(arguments),
    ));
    let handle = server
        .client()
        .send_cancellable_request(call, PeerRequestOptions::no_options())
        .await
        .expect("send tools/call");
    let started = std::time::Instant::now();
    let id = loop {
        let listed = server.list().await;
        if let Some(entry) = listed.iter().find(|entry| entry["status"] == "running") {
            break common::execution_id(entry);
        }
        assert!(started.elapsed() < common::DEADLINE, "it never ran");
        tokio::time::sleep(common::POLL_INTERVAL).await;
    };
    handle.cancel(None).await.expect("notifications/cancelled");

    let record = server.wait_final(&id).await;
    assert_eq!(record["status"], "cancelled", "{record}");
    assert!(
        error_of(&record).contains("run_js call that started it was cancelled"),
        "{record}"
    );
    assert_eq!(server.eval("'still served'").await, "still served");
}
