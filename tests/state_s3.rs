//! Stateful mode on a real S3-compatible server (moto, started by the
//! harness), through the production S3 code path: resume across restarts,
//! with and without the write-through cache, and an S3 outage.

mod common;

use std::time::{Duration, Instant};

use common::s3::{BUCKET, REGION, S3Server};
use common::{ServerOptions, error_of};
use serde_json::{Value, json};

fn s3_args(s3: &S3Server, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--s3-bucket",
        BUCKET,
        "--s3-region",
        REGION,
        "--s3-endpoint",
        &s3.endpoint(),
        "--s3-force-path-style",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    args.extend(extra.iter().map(|arg| arg.to_string()));
    args
}

async fn run(server: &common::Server, code: &str, heap: Option<&str>) -> Value {
    let mut arguments = json!({ "code": code });
    if let Some(heap) = heap {
        arguments["heap"] = json!(heap);
    }
    server.run_and_wait_with(arguments).await
}

fn heap_of(record: &Value) -> String {
    assert_eq!(record["status"], "completed", "{record}");
    record["heap"].as_str().expect("heap").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heaps_resume_from_s3_after_a_restart() {
    let s3 = S3Server::start().await;
    let state = tempfile::tempdir().expect("state dir");
    let args = s3_args(&s3, &[]);

    let server = ServerOptions::new()
        .state_dir(state.path())
        .args(args.clone())
        .start()
        .await;
    let heap = heap_of(&run(&server, "var planet = 'mars'; planet", None).await);
    server.stop().await;
    assert!(
        s3.object(&heap).await.is_some(),
        "the heap is stored in the bucket under its hash"
    );

    let server = ServerOptions::new()
        .state_dir(state.path())
        .args(args)
        .start()
        .await;
    let resumed = run(&server, "planet.toUpperCase()", Some(&heap)).await;
    assert_eq!(resumed["result"], "MARS", "{resumed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heaps_resume_from_s3_when_the_cache_was_wiped() {
    let s3 = S3Server::start().await;
    let state = tempfile::tempdir().expect("state dir");
    let cache = tempfile::tempdir().expect("cache dir");
    let cache_dir = cache.path().display().to_string();
    let args = s3_args(&s3, &["--cache-dir", &cache_dir]);

    let server = ServerOptions::new()
        .state_dir(state.path())
        .args(args.clone())
        .start()
        .await;
    let heap = heap_of(&run(&server, "var moons = 2; moons", None).await);
    server.stop().await;

    std::fs::remove_dir_all(cache.path()).expect("wipe the cache");
    std::fs::create_dir_all(cache.path()).expect("recreate the cache dir");

    let server = ServerOptions::new()
        .state_dir(state.path())
        .args(args)
        .start()
        .await;
    let resumed = run(&server, "moons + 1", Some(&heap)).await;
    assert_eq!(resumed["result"], "3", "{resumed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_fails_executions_clearly_and_recovers() {
    let mut s3 = S3Server::start().await;
    let server = ServerOptions::new().args(s3_args(&s3, &[])).start().await;
    let heap = heap_of(&run(&server, "var kept = 1; kept", None).await);

    s3.stop();
    let started = Instant::now();
    let down = run(&server, "2", None).await;
    assert_eq!(down["status"], "failed", "{down}");
    assert!(error_of(&down).contains("storage"), "{down}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "an unreachable store must fail fast, took {:?}",
        started.elapsed()
    );
    let resume_down = run(&server, "kept", Some(&heap)).await;
    assert_eq!(resume_down["status"], "failed", "{resume_down}");
    assert!(error_of(&resume_down).contains("storage"), "{resume_down}");
    let tag_down = server
        .call_err(
            "set_heap_tags",
            json!({ "heap": heap, "tags": { "k": "v" } }),
        )
        .await;
    assert!(
        tag_down.starts_with("heap storage unavailable"),
        "tagging needs the store to know the heap: {tag_down}"
    );

    // moto keeps objects in memory, so the restarted server starts empty;
    // new work succeeds without restarting mcp-v8.
    s3.restart().await;
    let up = run(&server, "var again = 'up'; again", None).await;
    let again = heap_of(&up);
    assert_eq!(run(&server, "again", Some(&again)).await["result"], "up");
    let tagged = server
        .call(
            "set_heap_tags",
            json!({ "heap": again, "tags": { "k": "v" } }),
        )
        .await;
    assert_eq!(tagged["tags"], json!({ "k": "v" }));
}
