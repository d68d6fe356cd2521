//! The runtime's own ops: console capture, the one op the bootstrap JS calls
//! for every console line; the operating system's randomness for
//! `crypto.getRandomValues` and `crypto.randomUUID`; the monotonic clock for
//! `performance.now()`.
//!
//! The JS side (`js/bootstrap.js`) does all formatting; Rust only receives the
//! finished line and its level and hands it to the execution's sink, which the
//! worker streams to the parent while the code is still running.

use deno_core::{OpState, op2};
use deno_error::JsErrorBox;
use serde::{Deserialize, Serialize};

/// Severity of a console line, as `console.debug/log/warn/error` chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsoleLevel {
    Debug,
    Log,
    Warn,
    Error,
}

impl ConsoleLevel {
    fn from_code(code: u32) -> Self {
        match code {
            0 => Self::Debug,
            2 => Self::Warn,
            3 => Self::Error,
            _ => Self::Log,
        }
    }
}

/// Receives each console line of the running execution.
pub type ConsoleFn = dyn FnMut(ConsoleLevel, &str);

/// Where one execution's console lines go. Put into the `OpState` per execution.
pub struct ConsoleSink(pub Box<ConsoleFn>);

#[op2(fast)]
pub fn op_mcp_console(state: &mut OpState, #[smi] level: u32, #[string] text: &str) {
    if let Some(sink) = state.try_borrow_mut::<ConsoleSink>() {
        (sink.0)(ConsoleLevel::from_code(level), text);
    }
}

/// Fills `buffer` from the operating system's random source (getrandom(2)).
/// The JS side bounds the size (65 536 bytes, as the Web Crypto API does).
#[op2(fast)]
pub fn op_mcp_random_fill(#[buffer] buffer: &mut [u8]) -> Result<(), JsErrorBox> {
    getrandom::fill(buffer)
        .map_err(|error| JsErrorBox::generic(format!("the system's random source failed: {error}")))
}

/// Milliseconds since this process's time origin, from the monotonic clock
/// (microsecond resolution), for `performance.now()`: as in Node, the
/// origin is the process's start ([`start_clock`], when the engine boots).
#[op2(fast)]
pub fn op_mcp_now() -> f64 {
    time_origin().0.elapsed().as_secs_f64() * 1000.0
}

/// The wall-clock time of the origin, in milliseconds since the Unix epoch,
/// for `performance.timeOrigin`.
#[op2(fast)]
pub fn op_mcp_time_origin() -> f64 {
    time_origin().1
}

/// Fixes the time origin of `performance` at this moment, if not yet fixed.
pub fn start_clock() {
    time_origin();
}

fn time_origin() -> &'static (std::time::Instant, f64) {
    static ORIGIN: std::sync::OnceLock<(std::time::Instant, f64)> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(|| {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64() * 1000.0);
        (std::time::Instant::now(), epoch_ms)
    })
}

deno_core::extension!(
    mcp_v8_runtime,
    ops = [
        op_mcp_console,
        op_mcp_random_fill,
        op_mcp_now,
        op_mcp_time_origin
    ]
);
