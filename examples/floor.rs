//! The floor: what one execution costs with nothing but V8 and deno_core.
//!
//! `cargo run --release --example floor [-- OPTIONS]`, usually through
//! `bench/floor`. Every benchmark report states its figures as a ratio to this
//! one, so a report says how much the server adds to the bare cost.
//!
//! Modes:
//! - `bare` (default): a startup snapshot of a trivial script, made once; then
//!   per execution: `JsRuntime` from that snapshot, evaluate `1 + 1`, drop.
//! - `bare-stateful`: the stateful floor: per execution a snapshot-creating
//!   `JsRuntimeForSnapshot` from that snapshot, `1 + 1`, `snapshot()` (which
//!   also disposes of the isolate). No compression, no store.
//! - `engine`: the crate's own engine in process, as a `--stateless` server's
//!   workers run it (`Engine::boot(EngineMode::Stateless)`, which keeps an
//!   idle isolate alive, then `Engine::run` of stateless jobs): the bare cost
//!   plus swc, limits, the bootstrap snapshot, result encoding. No server, no
//!   IPC.
//! - `engine-stateful`: `EngineMode::Stateful` and `stateful: true` jobs (the
//!   isolate is a snapshot creator and the heap is snapshotted and compressed
//!   after every run).
//!
//! The engine modes run one engine per process, as the server's workers do
//! (an engine is made to be the only one in its process: V8 crashes a process
//! when one isolate snapshots while another is active), so `--threads N`
//! starts N processes of this binary and adds up their figures; so does
//! `bare-stateful`, for the same reason.
//!
//! Options: `--threads N` (default 2), `--seconds S` (default 5), `--json`
//! (one JSON object on stdout instead of text), `--keeper` (bare mode: keep
//! one extra idle isolate alive for the whole run, so V8 keeps the read-only
//! heap and memory it shares between isolates instead of rebuilding them for
//! every execution when no other isolate is alive), `--tuned` (bare-stateful
//! mode: with the V8 flags and process settings of a stateful engine,
//! `engine::STATEFUL_INIT_V8_FLAGS` and `engine::tune_for_snapshots`; a
//! reference, not the floor, which is deno_core as it comes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use deno_core::{JsRuntime, JsRuntimeForSnapshot, RuntimeOptions};
use mcp_v8::engine::{ConsoleSink, Engine, EngineMode, Job, Outcome};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Bare,
    BareStateful,
    Engine,
    EngineStateful,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bare => "bare",
            Mode::BareStateful => "bare-stateful",
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
    keeper: bool,
    tuned: bool,
    skip_op_registration: bool,
}

fn parse_args() -> Options {
    let mut options = Options {
        mode: Mode::Bare,
        threads: 2,
        seconds: 5.0,
        json: false,
        keeper: false,
        tuned: false,
        skip_op_registration: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "bare" => options.mode = Mode::Bare,
            "bare-stateful" => options.mode = Mode::BareStateful,
            "engine" => options.mode = Mode::Engine,
            "engine-stateful" => options.mode = Mode::EngineStateful,
            "--threads" => options.threads = parse(args.next(), "--threads"),
            "--seconds" => options.seconds = parse(args.next(), "--seconds"),
            "--json" => options.json = true,
            "--keeper" => options.keeper = true,
            "--tuned" => options.tuned = true,
            "--skip-op-registration" => options.skip_op_registration = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: floor [bare|bare-stateful|engine|engine-stateful] [--threads N] [--seconds S] [--json] [--keeper] [--tuned] [--skip-op-registration]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("floor: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    if options.keeper && options.mode != Mode::Bare {
        // A keeper must come from the engine's own startup snapshot (V8
        // shares one read-only heap per process and aborts on a mismatch),
        // which the engine does not expose.
        eprintln!("floor: --keeper applies to bare mode only");
        std::process::exit(2);
    }
    if options.tuned && options.mode != Mode::BareStateful {
        // The engine modes tune themselves; bare mode never snapshots.
        eprintln!("floor: --tuned applies to bare-stateful mode only");
        std::process::exit(2);
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

/// One execution of the stateful floor: the snapshot is made and thrown away.
fn bare_stateful_execution(snapshot: &'static [u8], skip_op_registration: bool) {
    let mut runtime = JsRuntimeForSnapshot::new(RuntimeOptions {
        startup_snapshot: Some(snapshot),
        skip_op_registration,
        ..Default::default()
    });
    let value = runtime
        .execute_script("file:///floor.js", "1 + 1")
        .expect("1 + 1 evaluates");
    drop(value);
    drop(runtime.snapshot());
}

fn bare_execution(snapshot: &'static [u8], skip_op_registration: bool) {
    let mut runtime = JsRuntime::new(RuntimeOptions {
        startup_snapshot: Some(snapshot),
        skip_op_registration,
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
    if options.mode != Mode::Bare && options.threads > 1 {
        // Snapshot-making modes must not share a process (see the module docs).
        return one_process_each(&options);
    }
    let snapshot = match options.mode {
        Mode::Bare | Mode::BareStateful => {
            // Normal mode first: a snapshot creator as the first runtime would
            // set `--predictable` for the whole process (see ARCHITECTURE.md).
            // V8's default flags: the floor is deno_core as it comes
            // (`--tuned`, a reference beside it, takes the engine's).
            if options.tuned {
                deno_core::v8::V8::set_flags_from_string(mcp_v8::engine::STATEFUL_INIT_V8_FLAGS);
            }
            JsRuntime::init_platform(None);
            let snapshot = bare_snapshot();
            if options.tuned {
                mcp_v8::engine::tune_for_snapshots();
            }
            if options.keeper {
                // An idle isolate that lives as long as the process: V8 keeps
                // the read-only heap it shares with the measured isolates.
                std::mem::forget(JsRuntime::new(RuntimeOptions {
                    startup_snapshot: Some(snapshot),
                    ..Default::default()
                }));
            }
            Some(snapshot)
        }
        // The engine sets its V8 flags and initialises V8 itself, in the one
        // thread that runs it.
        _ => None,
    };

    let stop = Arc::new(AtomicBool::new(false));
    let warmed = Arc::new(Barrier::new(options.threads + 1));
    let reports: Vec<ThreadReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.threads)
            .map(|thread| {
                let (stop, warmed) = (stop.clone(), warmed.clone());
                let (mode, skip_ops) = (options.mode, options.skip_op_registration);
                scope.spawn(move || {
                    let engine = match mode {
                        Mode::Bare | Mode::BareStateful => None,
                        Mode::Engine => Some(EngineMode::Stateless),
                        Mode::EngineStateful => Some(EngineMode::Stateful),
                    }
                    .map(|mode| Engine::boot(mode).expect("the engine boots"));
                    // Tokio context for V8's delayed tasks, as in the engine.
                    let tokio = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    let _context = tokio.enter();
                    let run = |sequence: u64| match (mode, &engine) {
                        (Mode::Bare, _) => {
                            bare_execution(snapshot.expect("bare snapshot"), skip_ops)
                        }
                        (Mode::BareStateful, _) => {
                            bare_stateful_execution(snapshot.expect("bare snapshot"), skip_ops)
                        }
                        (mode, Some(engine)) => {
                            check(engine.run(
                                &job(sequence, mode == Mode::EngineStateful),
                                ConsoleSink(Box::new(|_, _| {})),
                            ));
                            // As a worker does after reporting an outcome.
                            engine.tidy();
                        }
                        (_, None) => unreachable!("engine modes boot an engine"),
                    };
                    // Warm-up outside the window: first-touch page faults, lazy init.
                    for sequence in 0..20 {
                        run(sequence);
                    }
                    warmed.wait();
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
                })
            })
            .collect();
        warmed.wait();
        std::thread::sleep(Duration::from_secs_f64(options.seconds));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a floor thread panicked"))
            .collect()
    });
    let window = reports
        .iter()
        .map(|r| r.wall.as_secs_f64())
        .fold(0.0, f64::max);
    let executions: u64 = reports.iter().map(|r| r.executions).sum();
    let cpu: f64 = reports.iter().map(|r| r.cpu.as_secs_f64()).sum();
    let wall: f64 = reports.iter().map(|r| r.wall.as_secs_f64()).sum();
    print_report(
        &options,
        "threads",
        Summary {
            window,
            executions,
            per_second: executions as f64 / window,
            wall_us: wall / executions as f64 * 1e6,
            cpu_us: cpu / executions as f64 * 1e6,
        },
    );
}

struct Summary {
    window: f64,
    executions: u64,
    per_second: f64,
    wall_us: f64,
    cpu_us: f64,
}

/// An engine, like a snapshot maker, must be alone in its process (one
/// isolate alive at a time, as in the server's workers), so N of them are N
/// processes of this binary, started together; their figures are added up.
fn one_process_each(options: &Options) {
    let exe = std::env::current_exe().expect("the floor binary");
    // All started before any is waited for: they must run at once.
    let started: Vec<_> = (0..options.threads)
        .map(|_| {
            let mut command = std::process::Command::new(&exe);
            command
                .args([options.mode.name(), "--threads", "1", "--json"])
                .args(["--seconds", &options.seconds.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit());
            if options.skip_op_registration {
                command.arg("--skip-op-registration");
            }
            if options.tuned {
                command.arg("--tuned");
            }
            command.spawn().expect("starting a floor process")
        })
        .collect();
    let children: Vec<_> = started
        .into_iter()
        .map(|child| child.wait_with_output().expect("a floor process's output"))
        .collect();
    let field = |json: &serde_json::Value, key: &str| json[key].as_f64().unwrap_or(f64::NAN);
    let reports: Vec<serde_json::Value> = children
        .iter()
        .map(|output| {
            assert!(output.status.success(), "a floor process failed");
            serde_json::from_slice(&output.stdout).expect("a floor process's report")
        })
        .collect();
    let executions: f64 = reports.iter().map(|r| field(r, "executions")).sum();
    let weighted = |key: &str| {
        reports
            .iter()
            .map(|r| field(r, key) * field(r, "executions"))
            .sum::<f64>()
            / executions
    };
    print_report(
        options,
        "processes",
        Summary {
            window: reports
                .iter()
                .map(|r| field(r, "seconds"))
                .fold(0.0, f64::max),
            executions: executions as u64,
            per_second: reports.iter().map(|r| field(r, "per_second")).sum(),
            wall_us: weighted("wall_us_per_execution"),
            cpu_us: weighted("cpu_us_per_execution"),
        },
    );
}

fn print_report(options: &Options, unit: &str, summary: Summary) {
    if options.json {
        println!(
            "{}",
            serde_json::json!({
                "mode": options.mode.name(),
                "threads": options.threads,
                "unit": unit,
                "seconds": (summary.window * 100.0).round() / 100.0,
                "executions": summary.executions,
                "per_second": (summary.per_second * 10.0).round() / 10.0,
                "wall_us_per_execution": summary.wall_us.round(),
                "cpu_us_per_execution": summary.cpu_us.round(),
            })
        );
    } else {
        println!(
            "floor ({}): {} {unit}, {:.1} s: {} executions, {:.0} executions/s; \
             {:.0} µs wall and {:.0} µs CPU per execution (per {})",
            options.mode.name(),
            options.threads,
            summary.window,
            summary.executions,
            summary.per_second,
            summary.wall_us,
            summary.cpu_us,
            if unit == "threads" {
                "thread"
            } else {
                "process"
            },
        );
    }
}
