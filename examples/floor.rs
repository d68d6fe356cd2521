//! The floor: what one execution costs with nothing but V8 and deno_core.
//!
//! `cargo run --release --example floor [-- OPTIONS]`, usually through
//! `bench/floor`. Every benchmark report states its figures as a ratio to this
//! one, so a report says how much the server adds to the bare cost.
//!
//! Modes:
//! - `bare` (default): a startup snapshot of a trivial script, made once; then
//!   per execution: `JsRuntime` from that snapshot, evaluate `1 + 1`, drop.
//! - `engine`: the crate's own engine in process (`Engine::boot` once per
//!   thread, then `Engine::run` of a stateless job): the bare cost plus swc,
//!   limits, the bootstrap snapshot, result encoding. No server, no IPC.
//! - `engine-stateful`: the same with `stateful: true` (the isolate is a
//!   snapshot creator and the heap is snapshotted and compressed after every
//!   run). One thread only: V8 crashes a process when one isolate snapshots
//!   while another is active.
//!
//! Options: `--threads N` (default 2), `--seconds S` (default 5), `--json`
//! (one JSON object on stdout instead of text).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use deno_core::{JsRuntime, JsRuntimeForSnapshot, RuntimeOptions};
use mcp_v8::engine::{ConsoleSink, Engine, Job, Outcome};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Bare,
    Engine,
    EngineStateful,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bare => "bare",
            Mode::Engine => "engine",
            Mode::EngineStateful => "engine-stateful",
        }
    }
}

struct Options {
    mode: Mode,
    threads: usize,
    seconds: f64,
    json: bool,
}

fn parse_args() -> Options {
    let mut options = Options {
        mode: Mode::Bare,
        threads: 2,
        seconds: 5.0,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "bare" => options.mode = Mode::Bare,
            "engine" => options.mode = Mode::Engine,
            "engine-stateful" => options.mode = Mode::EngineStateful,
            "--threads" => options.threads = parse(args.next(), "--threads"),
            "--seconds" => options.seconds = parse(args.next(), "--seconds"),
            "--json" => options.json = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: floor [bare|engine|engine-stateful] [--threads N] [--seconds S] [--json]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("floor: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    if options.mode == Mode::EngineStateful && options.threads != 1 {
        eprintln!(
            "floor: engine-stateful runs on one thread (snapshots are not safe beside other isolates)"
        );
        options.threads = 1;
    }
    options
}

fn parse<T: std::str::FromStr>(value: Option<String>, flag: &str) -> T {
    value
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| {
            eprintln!("floor: {flag} needs a number");
            std::process::exit(2);
        })
}

/// CPU time consumed by the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What one thread did in the measured window.
struct ThreadReport {
    executions: u64,
    wall: Duration,
    cpu: Duration,
}

/// The trivial startup snapshot of the bare floor: deno_core's own JS plus one
/// line, like a runtime that has a bootstrap but nothing in it.
fn bare_snapshot() -> &'static [u8] {
    let mut runtime = JsRuntimeForSnapshot::new(RuntimeOptions::default());
    runtime
        .execute_script("ext:floor/bootstrap.js", "globalThis.floor = 1;")
        .expect("the trivial bootstrap evaluates");
    Box::leak(runtime.snapshot())
}

fn bare_execution(snapshot: &'static [u8]) {
    let mut runtime = JsRuntime::new(RuntimeOptions {
        startup_snapshot: Some(snapshot),
        ..Default::default()
    });
    let value = runtime
        .execute_script("file:///floor.js", "1 + 1")
        .expect("1 + 1 evaluates");
    drop(value);
    drop(runtime);
}

fn job(sequence: u64, stateful: bool) -> Job {
    Job {
        execution_id: format!("floor-{sequence}"),
        code: "1 + 1".to_owned(),
        heap_memory_max_mb: 8,
        timeout: Duration::from_secs(30),
        stateful,
        restore: None,
    }
}

fn check(outcome: Outcome) {
    match outcome {
        Outcome::Completed { result, .. } if result == "2" => {}
        other => panic!("floor: unexpected outcome {other:?}"),
    }
}

fn main() {
    let options = parse_args();
    // Normal mode first: a snapshot creator as the first runtime would set
    // `--predictable` for the whole process (see ARCHITECTURE.md).
    JsRuntime::init_platform(None);
    let snapshot = match options.mode {
        Mode::Bare => Some(bare_snapshot()),
        _ => None,
    };

    let stop = Arc::new(AtomicBool::new(false));
    // Engines are booted one after another (each boot makes a snapshot, which
    // must not happen while another isolate is alive), then all start at once.
    let booted = Arc::new(Barrier::new(options.threads + 1));
    let boot_turn = Arc::new(std::sync::Mutex::new(()));
    let mut handles = Vec::new();
    for thread in 0..options.threads {
        let (stop, booted, boot_turn) = (stop.clone(), booted.clone(), boot_turn.clone());
        let mode = options.mode;
        handles.push(std::thread::spawn(move || {
            let engine = match mode {
                Mode::Bare => None,
                _ => {
                    let _turn = boot_turn.lock().unwrap();
                    Some(Engine::boot().expect("the engine boots"))
                }
            };
            // Tokio context for V8's delayed tasks, as in the engine.
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let _context = tokio.enter();
            let run = |sequence: u64| match mode {
                Mode::Bare => bare_execution(snapshot.expect("bare snapshot")),
                Mode::Engine => check(
                    engine
                        .as_ref()
                        .expect("engine")
                        .run(&job(sequence, false), ConsoleSink(Box::new(|_, _| {}))),
                ),
                Mode::EngineStateful => check(
                    engine
                        .as_ref()
                        .expect("engine")
                        .run(&job(sequence, true), ConsoleSink(Box::new(|_, _| {}))),
                ),
            };
            // Warm-up outside the window: first-touch page faults, lazy init.
            for sequence in 0..20 {
                run(sequence);
            }
            booted.wait();
            let (wall0, cpu0) = (Instant::now(), thread_cpu_time());
            let mut executions = 0u64;
            while !stop.load(Ordering::Relaxed) {
                run(1_000_000 * thread as u64 + executions);
                executions += 1;
            }
            ThreadReport {
                executions,
                wall: wall0.elapsed(),
                cpu: thread_cpu_time() - cpu0,
            }
        }));
    }
    booted.wait();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(options.seconds));
    stop.store(true, Ordering::Relaxed);
    let reports: Vec<ThreadReport> = handles
        .into_iter()
        .map(|handle| handle.join().expect("a floor thread panicked"))
        .collect();
    let window = started.elapsed().as_secs_f64();

    let executions: u64 = reports.iter().map(|r| r.executions).sum();
    let cpu: f64 = reports.iter().map(|r| r.cpu.as_secs_f64()).sum();
    let wall: f64 = reports.iter().map(|r| r.wall.as_secs_f64()).sum();
    let per_second = executions as f64 / window;
    let wall_us = wall / executions as f64 * 1e6;
    let cpu_us = cpu / executions as f64 * 1e6;
    if options.json {
        println!(
            "{{\"mode\":\"{}\",\"threads\":{},\"seconds\":{:.2},\"executions\":{},\"per_second\":{:.1},\"wall_us_per_execution\":{:.0},\"cpu_us_per_execution\":{:.0}}}",
            options.mode.name(),
            options.threads,
            window,
            executions,
            per_second,
            wall_us,
            cpu_us
        );
    } else {
        println!(
            "floor ({}): {} threads, {:.1} s: {} executions, {:.0} executions/s; \
             {:.0} µs wall and {:.0} µs CPU per execution (per thread)",
            options.mode.name(),
            options.threads,
            window,
            executions,
            per_second,
            wall_us,
            cpu_us
        );
    }
}
