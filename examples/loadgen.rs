//! A small HTTP load generator for `POST /api/exec`, used by `bench/run.sh` and
//! `bench/state.sh`.
//!
//! **Open loop** (default): requests are scheduled at a constant arrival rate,
//! `--rate R` per second for `--duration S` seconds, whatever the server does.
//! Latency is measured from each request's *scheduled* send time, not from
//! when it was actually sent, so a generator or server that falls behind
//! cannot hide the wait (no coordinated omission). The request body rotates
//! through a fixed list of snippets, and each answer is checked: a success is
//! HTTP 200 with `status: "completed"` and the snippet's expected result.
//!
//! **Closed loop** (`--closed N`): N clients each send the next request as
//! soon as the previous one is answered, for `--duration S` seconds or
//! `--count M` requests in total. This measures capacity, not latency under a
//! given load.
//!
//! Percentiles are exact (every latency is kept and sorted), over successful
//! requests. Everything else is counted by kind: `rejected` (HTTP 429, queue
//! full), other HTTP errors, timeouts (`--timeout`, default 30 s), transport
//! errors, and wrong answers (200 but not completed or an unexpected result).
//! `dropped` counts scheduled requests that were never sent because
//! `--max-in-flight` requests were already outstanding.
//!
//! Output: one JSON object on stdout (and appended to `--json-out FILE`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The snippets of the benchmark, with a check of their expected result.
const SNIPPETS: &[(&str, Expect)] = &[
    ("1 + 1", Expect::Exact("2")),
    ("Math.sqrt(144)", Expect::Exact("12")),
    (
        "JSON.stringify({a: 1, b: 2})",
        Expect::Exact(r#"{"a":1,"b":2}"#),
    ),
    (
        "Array.from({length: 10}, (_, i) => i * i).reduce((a, b) => a + b, 0)",
        Expect::Exact("285"),
    ),
    ("'hello'.repeat(3)", Expect::Exact("hellohellohello")),
    ("Date.now()", Expect::Number),
    ("Object.keys({x: 1, y: 2, z: 3}).length", Expect::Exact("3")),
    (
        "[1,2,3,4,5].filter(n => n % 2 === 0).map(n => n * 10)",
        Expect::Exact("[20,40]"),
    ),
];

#[derive(Clone, Copy)]
enum Expect {
    Exact(&'static str),
    Number,
    /// Any completed result (for `--code`).
    Any,
}

impl Expect {
    fn accepts(self, result: &str) -> bool {
        match self {
            Expect::Exact(expected) => result == expected,
            Expect::Number => result.parse::<f64>().is_ok(),
            Expect::Any => true,
        }
    }
}

struct Options {
    url: String,
    rate: f64,
    duration: f64,
    closed: Option<usize>,
    count: Option<u64>,
    timeout: Duration,
    max_in_flight: u64,
    label: String,
    json_out: Option<String>,
    /// One fixed snippet instead of the rotation.
    code: Option<String>,
    /// Extra JSON fields merged into every request body (e.g. a heap limit).
    extra: serde_json::Map<String, Value>,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen --url URL [--rate R --duration S | --closed N (--duration S | --count M)]\n\
         \x20              [--timeout S] [--max-in-flight N] [--label TEXT] [--json-out FILE]\n\
         \x20              [--code JS] [--field KEY=JSON]..."
    );
    std::process::exit(2);
}

fn value(args: &mut std::iter::Skip<std::env::Args>) -> String {
    args.next().unwrap_or_else(|| usage())
}

fn parse_args() -> Options {
    let mut options = Options {
        url: String::new(),
        rate: 0.0,
        duration: 0.0,
        closed: None,
        count: None,
        timeout: Duration::from_secs(30),
        max_in_flight: 10_000,
        label: String::new(),
        json_out: None,
        code: None,
        extra: serde_json::Map::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => options.url = value(&mut args),
            "--rate" => options.rate = value(&mut args).parse().unwrap_or_else(|_| usage()),
            "--duration" => options.duration = value(&mut args).parse().unwrap_or_else(|_| usage()),
            "--closed" => {
                options.closed = Some(value(&mut args).parse().unwrap_or_else(|_| usage()))
            }
            "--count" => options.count = Some(value(&mut args).parse().unwrap_or_else(|_| usage())),
            "--timeout" => {
                options.timeout =
                    Duration::from_secs_f64(value(&mut args).parse().unwrap_or_else(|_| usage()))
            }
            "--max-in-flight" => {
                options.max_in_flight = value(&mut args).parse().unwrap_or_else(|_| usage())
            }
            "--label" => options.label = value(&mut args),
            "--json-out" => options.json_out = Some(value(&mut args)),
            "--code" => options.code = Some(value(&mut args)),
            "--field" => {
                let field = value(&mut args);
                let (key, json) = field.split_once('=').unwrap_or_else(|| usage());
                let json = serde_json::from_str(json).unwrap_or_else(|_| usage());
                options.extra.insert(key.to_owned(), json);
            }
            _ => usage(),
        }
    }
    let open_ok = options.closed.is_none() && options.rate > 0.0 && options.duration > 0.0;
    let closed_ok = options.closed.is_some() && (options.duration > 0.0 || options.count.is_some());
    if options.url.is_empty() || !(open_ok || closed_ok) {
        usage();
    }
    options
}

/// How one request ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Success,
    Rejected,
    HttpError,
    Timeout,
    Transport,
    WrongAnswer,
}

struct Sample {
    ending: Ending,
    /// From the scheduled send time (open loop) or the send (closed loop).
    latency: Duration,
    /// When the answer arrived, from the start of the run.
    done_at: Duration,
    /// The server's own `duration_ms` for the execution, when it answered 200.
    server_ms: Option<f64>,
}

struct Shared {
    client: reqwest::Client,
    bodies: Vec<(String, Expect)>,
    url: String,
    samples: Mutex<Vec<Sample>>,
    in_flight: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    fn note_error(&self, text: String) {
        let mut first = self.first_error.lock().unwrap();
        if first.is_none() {
            *first = Some(text);
        }
    }

    /// Sends request number `sequence`; latency counts from `scheduled`.
    async fn request(&self, sequence: u64, scheduled: Instant, start: Instant) -> Sample {
        let (body, expect) = &self.bodies[sequence as usize % self.bodies.len()];
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let (ending, server_ms) = match response {
            Err(error) if error.is_timeout() => (Ending::Timeout, None),
            Err(error) => {
                self.note_error(format!("transport: {error}"));
                (Ending::Transport, None)
            }
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Err(error) if error.is_timeout() => (Ending::Timeout, None),
                    Err(error) => {
                        self.note_error(format!("transport (body): {error}"));
                        (Ending::Transport, None)
                    }
                    Ok(_) if status.as_u16() == 429 => (Ending::Rejected, None),
                    Ok(bytes) if !status.is_success() => {
                        self.note_error(format!(
                            "HTTP {status}: {}",
                            String::from_utf8_lossy(&bytes)
                        ));
                        (Ending::HttpError, None)
                    }
                    Ok(bytes) => judge(&bytes, *expect, self),
                }
            }
        };
        let now = Instant::now();
        Sample {
            ending,
            latency: now.saturating_duration_since(scheduled),
            done_at: now.saturating_duration_since(start),
            server_ms,
        }
    }
}

/// Checks a 200 answer: completed, with the expected result.
fn judge(bytes: &[u8], expect: Expect, shared: &Shared) -> (Ending, Option<f64>) {
    let Ok(answer) = serde_json::from_slice::<Value>(bytes) else {
        shared.note_error(format!(
            "unparsable answer: {}",
            String::from_utf8_lossy(bytes)
        ));
        return (Ending::WrongAnswer, None);
    };
    let server_ms = answer.get("duration_ms").and_then(Value::as_f64);
    let completed = answer.get("status").and_then(Value::as_str) == Some("completed");
    let result = answer.get("result").and_then(Value::as_str).unwrap_or("");
    if completed && expect.accepts(result) {
        (Ending::Success, server_ms)
    } else {
        shared.note_error(format!("wrong answer: {answer}"));
        (Ending::WrongAnswer, server_ms)
    }
}

/// CPU time this process has used (user + system), in seconds.
fn process_cpu_seconds() -> f64 {
    // SAFETY: `usage` is a valid out-pointer for the duration of the call.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1e3
}

fn main() {
    let options = parse_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(run(options.clone_for_report(), options));
    println!("{report}");
}

impl Options {
    fn clone_for_report(&self) -> ReportMeta {
        ReportMeta {
            label: self.label.clone(),
            json_out: self.json_out.clone(),
        }
    }
}

struct ReportMeta {
    label: String,
    json_out: Option<String>,
}

async fn run(meta: ReportMeta, options: Options) -> Value {
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .tcp_nodelay(true)
        .http1_only()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("an HTTP client");
    let snippets: Vec<(String, Expect)> = match &options.code {
        Some(code) => vec![(code.clone(), Expect::Any)],
        None => SNIPPETS
            .iter()
            .map(|(code, expect)| (code.to_string(), *expect))
            .collect(),
    };
    let bodies = snippets
        .into_iter()
        .map(|(code, expect)| {
            let mut body = options.extra.clone();
            body.insert("code".into(), Value::String(code));
            (Value::Object(body).to_string(), expect)
        })
        .collect();
    let shared = Arc::new(Shared {
        client,
        bodies,
        url: options.url.clone(),
        samples: Mutex::new(Vec::new()),
        in_flight: AtomicU64::new(0),
        first_error: std::sync::Mutex::new(None),
    });

    let start = Instant::now() + Duration::from_millis(20);
    let mut scheduled = 0u64;
    let mut sent = 0u64;
    let mut dropped = 0u64;
    let mut max_send_lag = Duration::ZERO;
    let mut tasks = tokio::task::JoinSet::new();

    match options.closed {
        None => {
            // Open loop: request i is due at start + i / rate.
            let total = (options.rate * options.duration).round() as u64;
            let interval = Duration::from_secs_f64(1.0 / options.rate);
            while scheduled < total {
                let due = start + interval.mul_f64(scheduled as f64);
                tokio::time::sleep_until(due).await;
                // Send everything that is due (timer granularity is ~1 ms).
                let now = Instant::now();
                while scheduled < total {
                    let due = start + interval.mul_f64(scheduled as f64);
                    if due > now {
                        break;
                    }
                    max_send_lag = max_send_lag.max(now - due);
                    let sequence = scheduled;
                    scheduled += 1;
                    if shared.in_flight.load(Ordering::Relaxed) >= options.max_in_flight {
                        dropped += 1;
                        continue;
                    }
                    sent += 1;
                    shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let sample = shared.request(sequence, due, start).await;
                        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                        shared.samples.lock().await.push(sample);
                    });
                }
                // Reap finished tasks so the set does not grow without bound.
                while tasks.try_join_next().is_some() {}
            }
        }
        Some(clients) => {
            tokio::time::sleep_until(start).await;
            let next = Arc::new(AtomicU64::new(0));
            let limit = options.count.unwrap_or(u64::MAX);
            let end =
                (options.duration > 0.0).then(|| start + Duration::from_secs_f64(options.duration));
            for _ in 0..clients {
                let (shared, next) = (shared.clone(), next.clone());
                tasks.spawn(async move {
                    loop {
                        if end.is_some_and(|end| Instant::now() >= end) {
                            break;
                        }
                        let sequence = next.fetch_add(1, Ordering::Relaxed);
                        if sequence >= limit {
                            break;
                        }
                        let sample = shared.request(sequence, Instant::now(), start).await;
                        shared.samples.lock().await.push(sample);
                    }
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();

    let samples = std::mem::take(&mut *shared.samples.lock().await);
    if options.closed.is_some() {
        sent = samples.len() as u64;
        scheduled = sent;
    }
    let count = |ending: Ending| samples.iter().filter(|s| s.ending == ending).count() as u64;
    let successes = count(Ending::Success);
    let mut latencies: Vec<Duration> = samples
        .iter()
        .filter(|s| s.ending == Ending::Success)
        .map(|s| s.latency)
        .collect();
    latencies.sort_unstable();
    let average = if latencies.is_empty() {
        f64::NAN
    } else {
        latencies.iter().map(Duration::as_secs_f64).sum::<f64>() / latencies.len() as f64 * 1e3
    };
    let server_ms: Vec<f64> = samples
        .iter()
        .filter(|s| s.ending == Ending::Success)
        .filter_map(|s| s.server_ms)
        .collect();
    let server_avg = if server_ms.is_empty() {
        f64::NAN
    } else {
        server_ms.iter().sum::<f64>() / server_ms.len() as f64
    };
    // Achieved: successful executions per second, from the start until the
    // last success arrived (a run that overran its window is not flattered).
    let last_success = samples
        .iter()
        .filter(|s| s.ending == Ending::Success)
        .map(|s| s.done_at)
        .max()
        .unwrap_or_default();
    let window = match options.closed {
        None => last_success.as_secs_f64().max(options.duration),
        Some(_) => last_success.as_secs_f64(),
    };
    let achieved = if window > 0.0 {
        successes as f64 / window
    } else {
        0.0
    };
    let round = |x: f64| {
        if x.is_finite() {
            (x * 100.0).round() / 100.0
        } else {
            -1.0
        }
    };
    let report = json!({
        "label": meta.label,
        "mode": if options.closed.is_some() { "closed" } else { "open" },
        "clients": options.closed,
        "offered_per_s": if options.closed.is_some() { Value::Null } else { json!(options.rate) },
        "duration_s": round(options.duration),
        "elapsed_s": round(elapsed.as_secs_f64()),
        "scheduled": scheduled,
        "sent": sent,
        "dropped": dropped,
        "successes": successes,
        "rejected_429": count(Ending::Rejected),
        "http_errors": count(Ending::HttpError),
        "timeouts": count(Ending::Timeout),
        "transport_errors": count(Ending::Transport),
        "wrong_answers": count(Ending::WrongAnswer),
        "success_pct": round(if scheduled > 0 { successes as f64 * 100.0 / scheduled as f64 } else { 0.0 }),
        "achieved_per_s": round(achieved),
        "latency_ms": {
            "avg": round(average),
            "p50": round(percentile(&latencies, 50.0)),
            "p95": round(percentile(&latencies, 95.0)),
            "p99": round(percentile(&latencies, 99.0)),
            "max": round(percentile(&latencies, 100.0)),
        },
        "server_duration_ms_avg": round(server_avg),
        "max_send_lag_ms": round(max_send_lag.as_secs_f64() * 1e3),
        "loadgen_cpu_s": round(process_cpu_seconds()),
        "first_error": shared.first_error.lock().unwrap().clone(),
    });
    if let Some(path) = &meta.json_out {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("opening --json-out");
        writeln!(file, "{report}").expect("writing --json-out");
    }
    report
}
