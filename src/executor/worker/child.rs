//! The worker process: `mcp-v8 worker`, started by the server, never by hand.
//!
//! It boots one [`Engine`] and then runs the jobs the server sends over the
//! socket on fd 3, one at a time, streaming console lines back as they are
//! printed. A reader thread takes cancellations while a job runs. When the
//! server goes away (end of stream) the worker exits at once.

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use anyhow::Context;

use super::protocol::{FromWorker, ToWorker, read_frame, write_frame};
use crate::engine::{ConsoleSink, Engine, EngineMode, Job, Outcome, Watchdog, on_fatal_oom};

/// The longest console line sent to the server; a longer one is cut, saying
/// so: well inside a frame.
const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// The descriptor on which the server hands each worker its socket.
pub const WORKER_FD: i32 = 3;

/// Entry point of `mcp-v8 worker` (`--stateless` for [`EngineMode::Stateless`]).
pub fn run(mode: EngineMode) -> anyhow::Result<()> {
    // SAFETY: the server starts workers with their socket on WORKER_FD
    // (see `pool::WorkerProcess::spawn`); nothing else in this process owns it.
    let socket = unsafe { UnixStream::from_raw_fd(WORKER_FD) };
    let engine = Engine::boot(mode).context("booting V8")?;
    let last_words = socket.try_clone().context("cloning the worker socket")?;
    on_fatal_oom(move |error| {
        let _ = write_frame(&last_words, &FromWorker::Retired(Outcome::failed(error)));
    });
    write_frame(&socket, &FromWorker::Ready).context("greeting the server")?;

    let (jobs, incoming) = mpsc::channel();
    let reader = socket.try_clone().context("cloning the worker socket")?;
    let watchdog = engine.watchdog();
    std::thread::Builder::new()
        .name("mcp-v8-worker-reader".into())
        .spawn(move || read_requests(reader, jobs, watchdog))
        .context("starting the reader thread")?;

    for (job, max_output_bytes) in incoming {
        let console = console_sink(&socket, max_output_bytes)?;
        let outcome = engine.run(&job, console);
        if engine.is_spent() {
            write_frame(&socket, &FromWorker::Retired(outcome)).context("reporting an outcome")?;
            // SAFETY: ends the process at once, as after a fatal V8 error: the
            // spent runtime is in no state for exit handlers.
            unsafe { libc::_exit(0) };
        }
        report(&socket, outcome)?;
        engine.tidy();
    }
    Ok(())
}

/// Sends the job's outcome. The engine keeps outcomes within the frame limit;
/// should one still not fit, the job fails with that reason rather than the
/// worker dying with it.
fn report(socket: &UnixStream, outcome: Outcome) -> anyhow::Result<()> {
    let done = FromWorker::Done(outcome);
    match write_frame(socket, &done) {
        Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
            let failure = Outcome::failed(format!("the outcome could not be reported: {error}"));
            write_frame(socket, &FromWorker::Done(failure)).context("reporting an outcome")
        }
        sent => sent.context("reporting an outcome"),
    }
}

/// Forwards jobs to the engine thread and cancellations to the watchdog.
fn read_requests(socket: UnixStream, jobs: mpsc::Sender<(Job, u64)>, watchdog: Watchdog) {
    loop {
        match read_frame::<ToWorker>(&socket) {
            Ok(Some(ToWorker::Run {
                job,
                max_output_bytes,
            })) => {
                if jobs.send((job, max_output_bytes)).is_err() {
                    break;
                }
            }
            Ok(Some(ToWorker::Cancel { execution_id })) => {
                watchdog.cancel(&execution_id);
            }
            Ok(None) => break,
            Err(error) => {
                tracing::error!("worker: unreadable request from the server: {error}");
                break;
            }
        }
    }
    // The server is gone or confused; a job still running has nobody to report to.
    std::process::exit(0);
}

/// Streams console lines to the server, up to `max_output_bytes` per job: past
/// that the server would drop them anyway, so they are not sent at all. A line
/// longer than the room left is cut to just over it: the server then ends the
/// output with its truncation marker, as for any line past the limit, and no
/// line is ever too large for a frame.
fn console_sink(socket: &UnixStream, max_output_bytes: u64) -> anyhow::Result<ConsoleSink> {
    let socket = socket.try_clone().context("cloning the worker socket")?;
    let mut sent: u64 = 0;
    Ok(ConsoleSink(Box::new(move |level, text| {
        if sent > max_output_bytes {
            return;
        }
        let room = usize::try_from(max_output_bytes - sent).unwrap_or(usize::MAX);
        let text = if text.len() <= room.min(MAX_LINE_BYTES) {
            text.to_owned()
        } else if room < MAX_LINE_BYTES {
            text[..text.ceil_char_boundary(room)].to_owned()
        } else {
            let cut = &text[..text.floor_char_boundary(MAX_LINE_BYTES)];
            format!("{cut} [line cut: {} bytes in all]", text.len())
        };
        sent += text.len() as u64 + 1;
        let line = FromWorker::Output { level, text };
        if let Err(error) = write_frame(&socket, &line) {
            tracing::warn!("worker: could not send console output: {error}");
        }
    })))
}
