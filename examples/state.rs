//! The stateful path, step by step: what a heap snapshot costs to make, how
//! big it is, and what storing and restoring it cost. Used by `bench/state.sh`.
//!
//! `cargo run --release --example state [-- --iterations N] [--json]`
//!
//! Two heaps: `trivial` (the code is `1 + 1`) and `10mb` (the code leaves
//! about 10 MB of live JS objects in a global). For each, two measurements:
//!
//! 1. **Steps** (deno_core directly, as the engine does it): a snapshot-creating
//!    runtime from a base snapshot (`JsRuntimeForSnapshot::new`), the script,
//!    `snapshot()`, compression with the server's own heap format
//!    (`mcp_v8::engine::heap::encode`: header + zstd level 1), a write to the
//!    server's directory store (`DirectoryStore::put`: temp file, fsync,
//!    rename, directory fsync), then back: store read, decompression, and a
//!    `JsRuntime` restored from the blob that reads one value and is dropped.
//! 2. **Engine** (`mcp_v8::engine::Engine::run`, in process): one stateful
//!    execution from the startup snapshot, and one resuming the heap it left.
//!    This is what a worker process does per execution, without the IPC, the
//!    store and the HTTP layer around it.
//!
//! Two alternatives to the server's compression are measured beside it, for
//! comparison only: zstd level 3, plain and with the base snapshot as a
//! reference prefix (so a heap is stored as its difference from the base).
//!
//! Figures are medians over `--iterations` runs (default 15) after a warm-up.

use std::time::{Duration, Instant};

use deno_core::{JsRuntime, JsRuntimeForSnapshot, RuntimeOptions};
use mcp_v8::engine::heap;
use mcp_v8::engine::{ConsoleSink, Engine, EngineMode, Job, Outcome};
use mcp_v8::storage::{DirectoryStore, HeapObject, HeapStore};

/// About 10 MB of live objects (checked against V8's heap statistics below).
const TEN_MB_SCRIPT: &str = "globalThis.data = Array.from({length: 52000}, \
     (_, i) => ({id: i, name: 'item-' + i, score: i / 7, tags: ['t' + (i % 10)]})); \
     data.length";
const TRIVIAL_SCRIPT: &str = "1 + 1";

struct Heap {
    name: &'static str,
    script: &'static str,
    /// Read back after a restore.
    probe: &'static str,
}

const HEAPS: [Heap; 2] = [
    Heap {
        name: "trivial",
        script: TRIVIAL_SCRIPT,
        probe: "typeof globalThis",
    },
    Heap {
        name: "10mb",
        script: TEN_MB_SCRIPT,
        probe: "data.length",
    },
];

/// One pass through the steps, in milliseconds (sizes in bytes).
#[derive(Default, Clone)]
struct Steps {
    create_ms: f64,
    script_ms: f64,
    snapshot_ms: f64,
    compress_ms: f64,
    store_write_ms: f64,
    store_read_ms: f64,
    decompress_ms: f64,
    restore_ms: f64,
    raw_bytes: usize,
    compressed_bytes: usize,
    live_heap_bytes: usize,
    /// Alternatives to the server's zstd level 1 (not used by the server).
    level3_ms: f64,
    level3_bytes: usize,
    prefix_ms: f64,
    prefix_bytes: usize,
    prefix_decompress_ms: f64,
}

/// zstd level 3 with the base snapshot as a reference prefix: a heap that
/// differs little from its base compresses to little more than the change.
fn compress_with_prefix(blob: &[u8], base: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder =
        zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 3, base).expect("a zstd encoder");
    encoder.write_all(blob).expect("compress");
    encoder.finish().expect("compress")
}

fn decompress_with_prefix(frame: &[u8], base: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut decoder =
        zstd::stream::read::Decoder::with_ref_prefix(frame, base).expect("a zstd decoder");
    let mut blob = Vec::new();
    decoder.read_to_end(&mut blob).expect("decompress");
    blob
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn base_snapshot() -> &'static [u8] {
    let mut runtime = JsRuntimeForSnapshot::new(RuntimeOptions::default());
    runtime
        .execute_script("ext:state/base.js", "globalThis.base = 1;")
        .expect("the base script evaluates");
    Box::leak(runtime.snapshot())
}

async fn steps(base: &'static [u8], heap_spec: &Heap, store: &DirectoryStore) -> Steps {
    let mut steps = Steps::default();

    let t = Instant::now();
    let mut runtime = JsRuntimeForSnapshot::new(RuntimeOptions {
        startup_snapshot: Some(base),
        ..Default::default()
    });
    steps.create_ms = ms(t);

    // Live bytes: heap statistics after a full GC (outside the timed steps).
    runtime.v8_isolate().low_memory_notification();
    let used_before = runtime.v8_isolate().get_heap_statistics().used_heap_size();
    let t = Instant::now();
    runtime
        .execute_script("file:///state.js", heap_spec.script)
        .expect("the heap script evaluates");
    steps.script_ms = ms(t);
    runtime.v8_isolate().low_memory_notification();
    steps.live_heap_bytes = runtime
        .v8_isolate()
        .get_heap_statistics()
        .used_heap_size()
        .saturating_sub(used_before);

    let t = Instant::now();
    let blob = runtime.snapshot();
    steps.snapshot_ms = ms(t);
    steps.raw_bytes = blob.len();

    let t = Instant::now();
    let object = heap::encode(&blob).expect("encode");
    steps.compress_ms = ms(t);
    steps.compressed_bytes = object.len();

    let t = Instant::now();
    steps.level3_bytes = zstd::bulk::compress(&blob, 3).expect("compress").len();
    steps.level3_ms = ms(t);
    let t = Instant::now();
    let prefixed = compress_with_prefix(&blob, base);
    steps.prefix_ms = ms(t);
    steps.prefix_bytes = prefixed.len();
    let t = Instant::now();
    let round_trip = decompress_with_prefix(&prefixed, base);
    steps.prefix_decompress_ms = ms(t);
    assert!(round_trip[..] == blob[..], "the prefixed frame round-trips");
    drop(blob);

    let object = HeapObject::new(object);
    let key = object.key().clone();
    let t = Instant::now();
    store.put(object).await.expect("store write");
    steps.store_write_ms = ms(t);

    let t = Instant::now();
    let object = store.get(&key).await.expect("store read");
    steps.store_read_ms = ms(t);

    let t = Instant::now();
    let blob = heap::decode(&object).expect("decode");
    steps.decompress_ms = ms(t);

    let restored = heap::RestoredBlob::new(blob);
    let t = Instant::now();
    {
        let mut runtime = JsRuntime::new(RuntimeOptions {
            // SAFETY: the runtime is dropped at the end of this block, before
            // `restored`.
            startup_snapshot: Some(unsafe { restored.as_static() }),
            ..Default::default()
        });
        let value = runtime
            .execute_script("file:///probe.js", heap_spec.probe)
            .expect("the probe evaluates");
        drop(value);
    }
    steps.restore_ms = ms(t);
    drop(restored);
    steps
}

fn job(id: &str, code: &str, restore: Option<Vec<u8>>) -> Job {
    Job {
        execution_id: id.to_owned(),
        code: code.to_owned(),
        heap_memory_max_mb: 64,
        timeout: Duration::from_secs(60),
        stateful: true,
        restore,
    }
}

/// One engine round: a stateful run from the startup snapshot, then one that
/// resumes its heap. Returns (first ms, heap object bytes, resume ms).
fn engine_round(engine: &Engine, heap_spec: &Heap, round: usize) -> (f64, usize, f64) {
    let sink = || ConsoleSink(Box::new(|_, _| {}));
    let t = Instant::now();
    let first = engine.run(&job(&format!("s{round}a"), heap_spec.script, None), sink());
    let first_ms = ms(t);
    let Outcome::Completed {
        heap: Some(object), ..
    } = first
    else {
        panic!("state: the stateful run did not complete: {first:?}");
    };
    let size = object.len();
    let t = Instant::now();
    let second = engine.run(
        &job(&format!("s{round}b"), heap_spec.probe, Some(object)),
        sink(),
    );
    let resume_ms = ms(t);
    assert!(
        matches!(second, Outcome::Completed { .. }),
        "state: the resumed run did not complete: {second:?}"
    );
    (first_ms, size, resume_ms)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut iterations = 15usize;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--iterations N")
            }
            "--json" => json = true,
            other => panic!("state: unknown argument {other:?}"),
        }
    }

    // The engine first: it sets the workers' V8 flags and initialises V8 (in
    // normal mode), so the steps below run under the server's flags too.
    let engine = Engine::boot(EngineMode::Stateful).expect("the engine boots");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let _context = tokio.enter();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = tokio
        .block_on(DirectoryStore::open(dir.path().join("heaps")))
        .expect("the directory store opens");
    let base = base_snapshot();

    for heap_spec in &HEAPS {
        // Warm-up.
        tokio.block_on(steps(base, heap_spec, &store));
        engine_round(&engine, heap_spec, usize::MAX);

        let runs: Vec<Steps> = (0..iterations)
            .map(|_| tokio.block_on(steps(base, heap_spec, &store)))
            .collect();
        let engine_runs: Vec<(f64, usize, f64)> = (0..iterations)
            .map(|round| engine_round(&engine, heap_spec, round))
            .collect();
        let pick = |f: fn(&Steps) -> f64| median(runs.iter().map(f).collect());
        let row = serde_json::json!({
            "heap": heap_spec.name,
            "iterations": iterations,
            "live_heap_bytes": runs[0].live_heap_bytes,
            "create_ms": pick(|s| s.create_ms),
            "script_ms": pick(|s| s.script_ms),
            "snapshot_ms": pick(|s| s.snapshot_ms),
            "raw_bytes": runs[0].raw_bytes,
            "compress_ms": pick(|s| s.compress_ms),
            "compressed_bytes": runs[0].compressed_bytes,
            "store_write_ms": pick(|s| s.store_write_ms),
            "store_read_ms": pick(|s| s.store_read_ms),
            "decompress_ms": pick(|s| s.decompress_ms),
            "restore_ms": pick(|s| s.restore_ms),
            "level3_ms": pick(|s| s.level3_ms),
            "level3_bytes": runs[0].level3_bytes,
            "prefix_ms": pick(|s| s.prefix_ms),
            "prefix_bytes": runs[0].prefix_bytes,
            "prefix_decompress_ms": pick(|s| s.prefix_decompress_ms),
            "engine_first_ms": median(engine_runs.iter().map(|r| r.0).collect()),
            "engine_heap_bytes": engine_runs[0].1,
            "engine_resume_ms": median(engine_runs.iter().map(|r| r.2).collect()),
        });
        if json {
            println!("{row}");
        } else {
            println!("{}", serde_json::to_string_pretty(&row).expect("json"));
        }
    }
}
