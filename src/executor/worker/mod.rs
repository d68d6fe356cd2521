//! Worker processes: the server side ([`WorkerProcess`]) and the child side
//! ([`child::run`], the `mcp-v8 worker` subcommand).
//!
//! Each worker is a long-lived process of our own binary that runs one isolate
//! at a time. A V8 crash, a fatal OOM or a SIGKILL costs the one execution the
//! worker was running; the server replaces the process and carries on.

pub mod child;
pub mod protocol;

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::engine::EngineMode;
use protocol::{FromWorker, MAX_FRAME_BYTES, ToWorker};

/// How long a new worker may take to boot V8 and build its startup snapshot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary to start workers from: this process's own.
///
/// On Linux that is `/proc/self/exe`, which names the running binary's file
/// even after a package upgrade has replaced or removed it at its path; a
/// worker started from the path would then be the new version (whose
/// protocol and heap fingerprint may differ) or fail to start, and every
/// execution after a worker's death would fail until the server restarts.
pub fn own_binary() -> std::io::Result<PathBuf> {
    let proc_self = Path::new("/proc/self/exe");
    if proc_self.exists() {
        Ok(proc_self.to_path_buf())
    } else {
        std::env::current_exe()
    }
}

/// A running `mcp-v8 worker` and the socket to it.
pub struct WorkerProcess {
    child: Child,
    channel: Framed<UnixStream, LengthDelimitedCodec>,
}

impl WorkerProcess {
    /// Starts `exe worker` with its socket on fd 3 and waits until it is ready.
    pub async fn spawn(exe: &Path, mode: EngineMode) -> std::io::Result<Self> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let theirs_fd = theirs.as_raw_fd();
        let mut command = Command::new(exe);
        command
            // What `ps` shows, whatever `exe` is called.
            .arg0(env!("CARGO_PKG_NAME"))
            .arg("worker")
            .args((mode == EngineMode::Stateless).then_some("--stateless"))
            .stdin(Stdio::null())
            // stdout may be the MCP stdio channel: a worker must never write there.
            .stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || hand_over_socket(theirs_fd));
        }
        let child = command.spawn()?;
        drop(theirs);
        ours.set_nonblocking(true)?;
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME_BYTES)
            .new_codec();
        let mut worker = Self {
            child,
            channel: Framed::new(UnixStream::from_std(ours)?, codec),
        };
        match tokio::time::timeout(BOOT_TIMEOUT, worker.receive()).await {
            Ok(Ok(Some(FromWorker::Ready))) => Ok(worker),
            Ok(Ok(Some(other))) => Err(protocol_error(format!(
                "worker greeted with {other:?} instead of Ready"
            ))),
            Ok(Ok(None)) => Err(worker.death_error().await),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "worker did not become ready in time",
            )),
        }
    }

    pub async fn send(&mut self, message: &ToWorker) -> std::io::Result<()> {
        let frame = protocol::encode(message)?;
        self.channel
            .send(tokio_util::bytes::Bytes::from(frame))
            .await
    }

    /// The next message, or `None` when the worker has closed its socket (died).
    pub async fn receive(&mut self) -> std::io::Result<Option<FromWorker>> {
        match self.channel.next().await {
            Some(Ok(frame)) => protocol::decode(&frame).map(Some),
            Some(Err(error)) => Err(error),
            None => Ok(None),
        }
    }

    /// Kills the process (if still alive) and reports how it ended.
    pub async fn kill(mut self) -> Option<ExitStatus> {
        let _ = self.child.start_kill();
        self.child.wait().await.ok()
    }

    /// After the socket closed: waits briefly for the exit status, for the message.
    pub async fn exit_status(&mut self) -> Option<ExitStatus> {
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        }
    }

    async fn death_error(&mut self) -> std::io::Error {
        let status = self.exit_status().await;
        std::io::Error::other(format!(
            "worker process exited during start-up ({})",
            describe_exit(status)
        ))
    }
}

/// In the child between fork and exec: put the socket on fd 3 (inheritable) and
/// ask the kernel to kill the worker if the server dies.
fn hand_over_socket(fd: i32) -> std::io::Result<()> {
    // SAFETY: plain syscalls on descriptors we own.
    unsafe {
        if fd == child::WORKER_FD {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else if libc::dup2(fd, child::WORKER_FD) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// "killed by signal 9 (SIGKILL)", "exit status 101", …
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}{}", signal_name(signal)),
            (None, None) => "unknown exit".to_owned(),
        },
        None => "exit status unknown".to_owned(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGTRAP => " (SIGTRAP)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGTERM => " (SIGTERM)",
        _ => "",
    }
}

fn protocol_error(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
