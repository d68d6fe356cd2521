//! Resource limits: each runaway execution ends on its own, with a clear
//! error, and the server goes on serving the next one.

mod common;

use std::time::{Duration, Instant};

use common::{Server, error_of};
use serde_json::json;

/// Proves the server is healthy after a runaway execution.
async fn assert_still_serves(server: &Server) {
    assert_eq!(server.eval("1+1").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_times_out() {
    let server = Server::start().await;
    let started = Instant::now();
    let record = server
        .run_and_wait_with(json!({ "code": "while(true){}", "execution_timeout_secs": 2 }))
        .await;
    let elapsed = started.elapsed();

    assert_eq!(record["status"], "timed_out", "{record}");
    assert!(
        elapsed < Duration::from_secs(6),
        "timing out a 2 s limit took {elapsed:?}"
    );
    let duration_ms = record["duration_ms"].as_u64().expect("duration_ms");
    assert!(duration_ms >= 1_900, "stopped before the limit: {record}");
    assert!(record.get("result").is_none(), "{record}");

    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heap_exhaustion_fails_the_execution_not_the_server() {
    let server = Server::start_with(&["--heap-memory-max", "8"]).await;
    let record = server
        .run_and_wait("const a = []; while (true) a.push(new Array(100000).fill(1))")
        .await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(error_of(&record).contains("heap limit"), "{record}");

    assert_still_serves(&server).await;
}

/// One allocation far past the limit (400 MB at once) is a fatal error in V8,
/// not one the near-heap-limit callback can stop: the worker process dies.
/// The execution still fails as over its heap limit, in those words, and the
/// executions queued behind it on the same worker are not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_allocation_fails_as_over_the_heap_limit() {
    for mode in [&["--stateless"][..], &[][..]] {
        let server =
            Server::start_with(&[mode, &["--max-concurrent-executions", "1"]].concat()).await;
        let huge = server.start_js("new Array(5e7).fill(0).length").await;
        let after = server.start_js("6 * 7").await;
        let record = server.wait_final(&huge).await;
        assert_eq!(record["status"], "failed", "{mode:?}: {record}");
        let error = error_of(&record);
        assert!(
            error.contains("heap limit exceeded") && error.contains("heap_memory_max_mb"),
            "{mode:?}: {record}"
        );
        let record = server.wait_final(&after).await;
        assert_eq!(record["result"], "42", "{mode:?}: {record}");

        assert_still_serves(&server).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_buffer_exhaustion_fails_the_execution_not_the_server() {
    let server = Server::start_with(&["--heap-memory-max", "8"]).await;
    let record = server
        .run_and_wait("const bufs = []; while (true) bufs.push(new ArrayBuffer(1 << 20))")
        .await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(record.get("result").is_none(), "{record}");

    assert_still_serves(&server).await;
}

#[tokio::test]
async fn stack_overflow_fails_the_execution() {
    let server = Server::start().await;
    let record = server.run_and_wait("function f(){ return f() } f()").await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(
        error_of(&record).contains("maximum call stack size exceeded"),
        "{record}"
    );

    assert_still_serves(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_answers_busy() {
    let server = Server::start_with(&[
        "--max-concurrent-executions",
        "1",
        "--max-queued-executions",
        "1",
    ])
    .await;
    let endless = json!({ "code": "while(true){}", "execution_timeout_secs": 30 });

    let running = server.start_js_with(endless.clone()).await;
    server.wait_status(&running, "running").await;
    let queued = server.start_js_with(endless.clone()).await;
    assert_eq!(server.get(&queued).await["status"], "queued");

    let message = server.call_err("run_js", endless).await;
    assert!(message.contains("busy"), "{message}");
    assert_eq!(
        server.list().await.len(),
        2,
        "the refused call left a record"
    );

    server.cancel(&queued).await;
    server.cancel(&running).await;
}

/// A stateless server with one worker process and an 8 MB default heap limit.
async fn one_stateless_worker() -> Server {
    Server::start_with(&[
        "--stateless",
        "--heap-memory-max",
        "8",
        "--max-concurrent-executions",
        "1",
    ])
    .await
}

/// A stateless server's workers keep an idle isolate alive beside the running
/// one (see `EngineMode::Stateless`). Every way of stopping JS must still end
/// only the execution: the same worker process serves them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_workers_outlive_every_limit() {
    let server = one_stateless_worker().await;
    assert_still_serves(&server).await;
    let workers = server.worker_pids();
    assert_eq!(workers.len(), 1, "{workers:?}");

    let record = server
        .run_and_wait_with(json!({ "code": "while(true){}", "execution_timeout_secs": 1 }))
        .await;
    assert_eq!(record["status"], "timed_out", "{record}");

    let record = server
        .run_and_wait("const a = []; while (true) a.push(new Array(100000).fill(1))")
        .await;
    assert!(error_of(&record).contains("heap limit"), "{record}");

    let record = server
        .run_and_wait("const bufs = []; while (true) bufs.push(new ArrayBuffer(1 << 20))")
        .await;
    assert_eq!(record["status"], "failed", "{record}");

    let record = server.run_and_wait("function f(){ return f() } f()").await;
    assert!(
        error_of(&record).contains("maximum call stack size exceeded"),
        "{record}"
    );

    let running = server.start_js("while(true){}").await;
    server.wait_status(&running, "running").await;
    server.cancel(&running).await;
    assert_eq!(server.wait_final(&running).await["status"], "cancelled");

    for n in 0..50 {
        assert_eq!(server.eval(&format!("{n} * 2")).await, (n * 2).to_string());
    }
    assert_eq!(
        server.worker_pids(),
        workers,
        "a worker process was lost on the way"
    );
}

/// Stateless workers make the next job's isolate ahead of time with the last
/// job's heap limit. A job that asks for another limit must still get its own,
/// and nothing one job leaves on the global object reaches the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_jobs_get_their_own_heap_limit_and_a_clean_isolate() {
    let server = one_stateless_worker().await;
    // About 16 MB of live arrays: more than 8 MB, well within 48 MB.
    let sixteen_mb =
        "const a = []; for (let i = 0; i < 40; i++) a.push(new Array(50000).fill(i)); a.length";
    let big = |code: &str| json!({ "code": code, "heap_memory_max_mb": 48 });

    assert_eq!(server.eval("globalThis.left = 'behind'; 1").await, "1");
    for round in 0..2 {
        let record = server.run_and_wait_with(big(sixteen_mb)).await;
        assert_eq!(record["status"], "completed", "round {round}: {record}");
        assert_eq!(record["result"], "40", "round {round}: {record}");

        let record = server.run_and_wait(sixteen_mb).await;
        assert!(
            error_of(&record).contains("heap limit"),
            "round {round}: the 8 MB default was not applied: {record}"
        );
    }
    // Twice with the larger limit in a row: the second runs in an isolate made
    // ahead of time with it.
    for _ in 0..2 {
        let record = server.run_and_wait_with(big(sixteen_mb)).await;
        assert_eq!(record["status"], "completed", "{record}");
    }
    assert_eq!(server.eval("typeof left").await, "undefined");
}

/// Results, errors and console lines past their limits fail or are cut, in
/// words, and the worker that ran them serves on. (Anything past the worker
/// protocol's frame limit used to kill the worker with a generic message.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_results_errors_and_lines_are_refused_or_cut_in_words() {
    let server = Server::start_with(&[
        "--stateless",
        "--max-concurrent-executions",
        "1",
        "--heap-memory-cap",
        "256",
    ])
    .await;
    let workers = server.one_serving_worker().await;

    let record = server
        .run_and_wait_with(json!({
            "code": "'x'.repeat(17 * 1024 * 1024)",
            "heap_memory_max_mb": 128,
        }))
        .await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(record.get("result").is_none(), "{record}");
    assert!(
        error_of(&record).contains("more than the 16.0 mib a result may be"),
        "{record}"
    );

    let record = server
        .run_and_wait("throw new Error('e'.repeat(1e6))")
        .await;
    assert_eq!(record["status"], "failed", "{record}");
    let error = error_of(&record);
    assert!(error.len() < 70_000, "{} bytes of error", error.len());
    assert!(
        error.starts_with("error: eeee") && error.ends_with("bytes in all]"),
        "{}",
        &error[error.len() - 100..]
    );

    // 69 MB of UTF-8 in one line: more than a frame could carry.
    let record = server
        .run_and_wait_with(json!({
            "code": "console.log('\\u0800'.repeat(23e6)); console.log('after'); 'done'",
            "heap_memory_max_mb": 160,
        }))
        .await;
    assert_eq!(record["status"], "completed", "{record}");
    assert_eq!(record["result"], "done", "{record}");
    let id = common::execution_id(&record);
    assert_eq!(
        server.output_lines(&id).await,
        ["[output truncated: the limit of 16777216 bytes was reached]"]
    );

    assert_eq!(server.worker_pids(), workers, "a worker was replaced");
    assert_still_serves(&server).await;
}

/// A heap snapshot too large to store fails its execution in words, and the
/// worker that made it serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heap_too_large_to_store_fails_clearly() {
    let server = Server::start_with(&[
        "--max-concurrent-executions",
        "1",
        "--heap-memory-cap",
        "512",
    ])
    .await;
    let workers = server.one_serving_worker().await;
    // Random bytes do not compress: 136 MB of them make a heap object over 128 MiB.
    let code = "globalThis.noise = new Uint32Array(34e6); \
                for (let i = 0; i < noise.length; i++) noise[i] = Math.random() * 2 ** 32; \
                noise.length";
    let record = server
        .run_and_wait_with(json!({ "code": code, "heap_memory_max_mb": 400 }))
        .await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(record.get("heap").is_none(), "{record}");
    let error = error_of(&record);
    assert!(
        error.contains("heap snapshot is")
            && error.contains("more than the 128.0 mib a stored heap may be"),
        "{record}"
    );
    assert_eq!(server.worker_pids(), workers, "a worker was replaced");
    assert_still_serves(&server).await;
}

/// Deep nesting is refused in words, long chains run, and neither takes the
/// worker down (swc, which prepares the code, recurses: a few thousand nested
/// brackets overflowed the worker's stack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_code_is_refused_and_long_chains_run() {
    let server = Server::start_with(&["--stateless", "--max-concurrent-executions", "1"]).await;
    let workers = server.one_serving_worker().await;

    let nested = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let record = server.run_and_wait(&nested).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(
        error_of(&record).contains("nests brackets more than 1000 levels deep"),
        "{record}"
    );

    let chain = format!("1{}", " + 1".repeat(20_000));
    assert_eq!(server.eval(&chain).await, "20001");

    assert_eq!(server.worker_pids(), workers, "a worker was replaced");
}

/// Code waiting on a timer is stopped at its deadline, or when cancelled, by
/// the worker itself: terminating V8 does not wake an event loop that waits,
/// so such executions used to end only when the server killed their worker
/// (a stateful one 10 s past its deadline). A stateless worker goes on; a
/// stateful runtime stopped while waiting cannot be snapshotted, so its
/// worker reports and then makes way for a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_code_is_stopped_at_its_deadline() {
    for stateless in [true, false] {
        let mode: &[&str] = if stateless { &["--stateless"] } else { &[] };
        let server =
            Server::start_with(&[mode, &["--max-concurrent-executions", "1"]].concat()).await;
        let workers = server.one_serving_worker().await;
        let record = server
            .run_and_wait_with(json!({
                "code": "await new Promise(r => setTimeout(r, 600000)); 1",
                "execution_timeout_secs": 1,
            }))
            .await;
        assert_eq!(record["status"], "timed_out", "{mode:?}: {record}");
        let duration_ms = record["duration_ms"].as_u64().expect("duration_ms");
        assert!(duration_ms < 5_000, "{mode:?}: {record}");
        // Its value never settled: no word of timers after it.
        assert!(!error_of(&record).contains("value was ready"), "{record}");

        // Its value settled, but an interval never cleared kept it running:
        // the error says so, since the value is lost.
        let record = server
            .run_and_wait_with(json!({
                "code": "setInterval(() => {}, 50); 42",
                "execution_timeout_secs": 1,
            }))
            .await;
        assert_eq!(record["status"], "timed_out", "{mode:?}: {record}");
        let error = error_of(&record);
        assert!(
            error.contains("the code's value was ready, but timers still pending")
                && error.contains("clearinterval"),
            "{mode:?}: {record}"
        );

        let waiting = server.start_js("setTimeout(() => {}, 600000); 1").await;
        server.wait_status(&waiting, "running").await;
        let record = server.cancel(&waiting).await;
        assert_eq!(record["status"], "cancelled", "{mode:?}: {record}");

        if stateless {
            assert_eq!(server.worker_pids(), workers, "a worker was replaced");
        }
        assert_still_serves(&server).await;
    }
}

/// WebAssembly memories and resizable ArrayBuffers come from the operating
/// system, past V8's heap limit and the ArrayBuffer budget: the worker's
/// resident memory is watched too, so they cannot take the host's memory
/// (with the default 8 MB limit, each of these took 300 MB and completed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_from_outside_the_heap_counts_against_the_limit() {
    let server = one_stateless_worker().await;
    assert_still_serves(&server).await;
    let workers = server.worker_pids();
    let cases = [
        "const memory = new WebAssembly.Memory({ initial: 4800 }); \
         const bytes = new Uint8Array(memory.buffer); \
         for (let page = 0; page < bytes.length; page += 4096) bytes[page] = 1; 1",
        "const buffer = new ArrayBuffer(0, { maxByteLength: 1 << 30 }); \
         buffer.resize(300 << 20); \
         const bytes = new Uint8Array(buffer); \
         for (let page = 0; page < bytes.length; page += 4096) bytes[page] = 1; 1",
    ];
    for code in cases {
        let record = server.run_and_wait(code).await;
        assert_eq!(record["status"], "failed", "{code}: {record}");
        assert!(
            error_of(&record).contains("heap limit exceeded"),
            "{code}: {record}"
        );
    }
    assert_eq!(server.worker_pids(), workers, "a worker was replaced");
    assert_still_serves(&server).await;
}

/// Over stdio a message may be as large as an HTTP body
/// (`transport.max_body_bytes`), not only rmcp's default of 16 MiB: code
/// past 16 MiB arrives and is answered (here refused by its own limit)
/// instead of being dropped without a reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_messages_may_be_as_large_as_an_http_body() {
    let server = Server::start_with(&[
        "--stateless",
        "--max-body-bytes",
        "41943040",
        "--max-code-bytes",
        "16777216",
    ])
    .await;
    let code = "1;".repeat(9 * 1024 * 1024);
    let error = server.call_err("run_js", json!({ "code": code })).await;
    assert!(
        error.contains(&format!(
            "the code is {} bytes; the limit is 16777216 bytes",
            code.len()
        )),
        "{error}"
    );
    assert_still_serves(&server).await;
}
