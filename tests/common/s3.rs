//! A real S3-compatible server for the storage tests: `moto_server` (PyPI
//! `moto[server]`, installed by `./dev test`) on a free 127.0.0.1 port, with a
//! bucket ready. It can be stopped and restarted on the same port to simulate
//! an outage, and is killed when dropped.
//!
//! moto keeps everything in memory: a restart comes back empty, and the
//! harness creates the bucket again.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use mcp_v8::config::StorageConfig;
use tempfile::TempDir;

use super::{DEADLINE, POLL_INTERVAL};

/// The bucket every server starts with.
pub const BUCKET: &str = "mcp-v8-heaps";
/// moto accepts any credentials; these are the conventional dummies.
pub const ACCESS_KEY: &str = "test";
pub const SECRET_KEY: &str = "test";
pub const REGION: &str = "us-east-1";

const MOTO: &str = "moto_server";

/// A running moto server with [`BUCKET`] created.
pub struct S3Server {
    port: u16,
    child: Option<Child>,
    /// Direct access to the server, bypassing the code under test.
    admin: Client,
    log: PathBuf,
    _dir: TempDir,
}

impl S3Server {
    /// Starts moto on a free port and creates [`BUCKET`]. Also makes the
    /// dummy credentials visible to the AWS SDK's default chain, which the
    /// production `storage::open` uses.
    pub async fn start() -> S3Server {
        use_test_credentials();
        let dir = tempfile::tempdir().expect("temporary directory for the moto log");
        let port = free_port();
        let mut server = S3Server {
            port,
            child: None,
            admin: admin_client(&endpoint_of(port)),
            log: dir.path().join("moto.log"),
            _dir: dir,
        };
        server.launch().await;
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        endpoint_of(self.port)
    }

    /// A client with the dummy credentials, for looking at or tampering with
    /// the bucket directly.
    pub fn admin(&self) -> &Client {
        &self.admin
    }

    /// `[storage]` pointing at this server's bucket, as an operator would
    /// configure an S3-compatible store.
    pub fn storage_config(&self, prefix: Option<&str>) -> StorageConfig {
        StorageConfig {
            s3_bucket: Some(BUCKET.to_owned()),
            s3_prefix: prefix.map(str::to_owned),
            s3_region: Some(REGION.to_owned()),
            s3_endpoint: Some(self.endpoint()),
            s3_force_path_style: true,
            ..StorageConfig::default()
        }
    }

    /// The bytes stored under `key`, read directly from the bucket.
    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        let output = self
            .admin
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .ok()?;
        let body = output.body.collect().await.expect("read object body");
        Some(body.to_vec())
    }

    /// Writes `bytes` under `key` directly, bypassing verification.
    pub async fn put_raw(&self, key: &str, bytes: Vec<u8>) {
        self.admin
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put object directly");
    }

    pub async fn delete_raw(&self, key: &str) {
        self.admin
            .delete_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("delete object directly");
    }

    /// Kills the server (and anything it started) and waits for it to exit;
    /// connections to the port are refused until [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = i32::try_from(child.id()).expect("pid fits in i32");
            // The server leads its own process group (see `spawn`).
            // SAFETY: kill(2) with a negative pid signals that group; it has
            // no memory-safety preconditions.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Suspends the server: connections are still accepted by the kernel but
    /// nothing answers, like a network black hole. [`Self::thaw`] resumes it.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let child = self.child.as_ref().expect("the server is running");
        let pid = i32::try_from(child.id()).expect("pid fits in i32");
        // SAFETY: kill(2) on the server's own process group; no memory-safety
        // preconditions.
        let rc = unsafe { libc::kill(-pid, signal) };
        assert_eq!(rc, 0, "signal moto: {}", std::io::Error::last_os_error());
    }

    /// Starts the server again on the same port, empty, and recreates the
    /// bucket.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    /// Spawns moto and waits until it answers and the bucket exists. A port
    /// still held by the previous instance makes moto exit; it is retried
    /// until the deadline.
    async fn launch(&mut self) {
        let started = Instant::now();
        loop {
            let mut child = self.spawn();
            loop {
                if self.admin.list_buckets().send().await.is_ok() {
                    self.child = Some(child);
                    self.create_bucket().await;
                    return;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    if started.elapsed() > DEADLINE {
                        panic!("moto_server exited with {status}:\n{}", self.log_tail());
                    }
                    break;
                }
                if started.elapsed() > DEADLINE {
                    let _ = child.kill();
                    panic!(
                        "moto_server did not answer on port {} within {DEADLINE:?}:\n{}",
                        self.port,
                        self.log_tail()
                    );
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn spawn(&self) -> Child {
        let log = std::fs::File::create(&self.log).expect("create the moto log");
        let stderr = log.try_clone().expect("clone the log handle");
        let mut command = Command::new(MOTO);
        command
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the
        // parent. It makes the kernel kill moto if the test process dies
        // without running destructors (say, a nextest timeout).
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        command.spawn().unwrap_or_else(|err| {
            panic!(
                "cannot start {MOTO} ({err}); install it with \
                 `python3 -m pip install 'moto[server]'` (./dev test does)"
            )
        })
    }

    async fn create_bucket(&self) {
        self.admin
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .expect("create the test bucket");
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets the dummy credentials and region in the environment, once per test
/// process, for the AWS SDK's default provider chain.
pub fn use_test_credentials() {
    static CREDENTIALS: Once = Once::new();
    CREDENTIALS.call_once(|| {
        // SAFETY: every test that talks to S3 comes through here before it
        // starts anything that reads the environment, `Once` makes the others
        // wait until the writes are done, and nothing writes the variables
        // afterwards. nextest runs each test in its own process anyway.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
            std::env::set_var("AWS_REGION", REGION);
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

fn endpoint_of(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// A port nothing listens on right now. The listener is closed before moto
/// binds it; the window is small and a collision only makes moto exit, which
/// `launch` reports.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// Explicit credentials and short timeouts: polling a server that is still
/// starting must fail fast, not retry for a minute.
fn admin_client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    Client::from_conf(config)
}
