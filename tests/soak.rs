//! Sixty seconds of mixed load: a stateful and a stateless server at once,
//! each with several executions in flight — fresh runs, resumed heaps, a
//! session advancing, and code that throws, times out or runs out of memory.
//! The servers must stay up and every execution must end completed, or failed
//! or timed out with a clear error.

mod common;

use std::time::{Duration, Instant};

use common::{Server, ServerOptions};
use serde_json::{Value, json};

const LOAD: Duration = Duration::from_secs(60);

/// Code for the `n`th request of a client, cycling through kinds of work.
fn workload(n: usize) -> (Value, Option<&'static str>) {
    match n % 6 {
        0 => (
            json!({ "code": "[1,2,3].map(x => x * 2).join()" }),
            Some("completed"),
        ),
        1 => (
            json!({ "code": "await new Promise(r => setTimeout(r, 5)); 'later'" }),
            Some("completed"),
        ),
        2 => (
            json!({ "code": "throw new Error('expected failure')" }),
            Some("failed"),
        ),
        3 => (
            json!({ "code": "while (true) {}", "execution_timeout_secs": 1 }),
            Some("timed_out"),
        ),
        4 => (
            json!({ "code": "const a = []; while (true) a.push(new Array(1e5).fill(1))", "heap_memory_max_mb": 8 }),
            Some("failed"),
        ),
        _ => (
            json!({ "code": "console.log('tick'); globalThis.t = Date.now(); 't'" }),
            Some("completed"),
        ),
    }
}

/// One client: requests back to back until the deadline; returns the records.
async fn client(server: &Server, id: usize, deadline: Instant, stateful: bool) -> Vec<Value> {
    let mut records = Vec::new();
    let mut heap: Option<String> = None;
    let mut n = id;
    while Instant::now() < deadline {
        let (mut arguments, expected) = workload(n);
        if stateful && id == 0 {
            // This client threads one heap through its completed runs.
            if let Some(heap) = &heap {
                arguments["heap"] = json!(heap);
            }
        }
        if stateful && id == 1 {
            arguments["session"] = json!("soak");
        }
        let record = server.run_and_wait_with(arguments).await;
        let status = record["status"].as_str().unwrap_or_default().to_owned();
        match status.as_str() {
            "completed" => {
                if stateful {
                    heap = record["heap"].as_str().map(str::to_owned).or(heap);
                }
            }
            "failed" | "timed_out" => {
                let error = record["error"].as_str().unwrap_or_default();
                assert!(!error.trim().is_empty(), "no error message: {record}");
            }
            other => panic!("unexpected final status {other}: {record}"),
        }
        if let Some(expected) = expected {
            assert_eq!(status, expected, "{record}");
        }
        records.push(record);
        n += 1;
    }
    records
}

async fn load(server: &Server, clients: usize, stateful: bool) -> usize {
    let deadline = Instant::now() + LOAD;
    let runs =
        futures::future::join_all((0..clients).map(|id| client(server, id, deadline, stateful)))
            .await;
    runs.iter().map(Vec::len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_seconds_of_mixed_load() {
    let stateful = ServerOptions::new()
        .args(["--max-concurrent-executions", "2"])
        .start()
        .await;
    let stateless = ServerOptions::new()
        .args(["--stateless", "--max-concurrent-executions", "2"])
        .start()
        .await;

    let (stateful_runs, stateless_runs) =
        tokio::join!(load(&stateful, 3, true), load(&stateless, 3, false));
    assert!(
        stateful_runs > 30,
        "only {stateful_runs} stateful executions"
    );
    assert!(
        stateless_runs > 30,
        "only {stateless_runs} stateless executions"
    );

    for server in [&stateful, &stateless] {
        assert_eq!(server.eval("'alive'").await, "alive");
        let listed = server.list().await;
        assert!(listed.len() > 30, "{} listed", listed.len());
        assert!(
            listed.iter().all(common::is_final),
            "every execution reached a final status"
        );
    }
    let session = stateful
        .call(
            "list_session_snapshots",
            json!({ "session": "soak", "fields": "index,output_heap" }),
        )
        .await;
    assert!(
        session["entries"]
            .as_array()
            .is_some_and(|entries| entries.len() > 5),
        "{session}"
    );
}
