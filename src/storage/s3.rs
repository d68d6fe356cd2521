//! Heap snapshots as objects in an S3 bucket (AWS or any S3-compatible
//! server), one PUT per object at `<prefix><hash>`.
//!
//! Timeouts and retries are deliberately short: a heap store that cannot be
//! reached must fail the execution that needs it within seconds, with a clear
//! error, rather than hold a worker for the SDK's default minutes. The client
//! keeps no state that an outage could poison (connections that fail are
//! dropped, the retry budget refills), so the same store works again as soon
//! as S3 does.

use std::error::Error;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Region, StalledStreamProtectionConfig};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::error::blocking;
use super::{HeapKey, HeapObject, HeapStore, StorageError};
use crate::config::StorageConfig;

/// Time to establish a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of a small request (HEAD, GET headers): S3 answers these in
/// milliseconds, so anything slower is an outage.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// A small request with its retries; bounds how long an unreachable S3 takes
/// to fail an execution.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(9);
/// Two attempts: enough to ride over one stale pooled connection (say, after
/// the server restarted) without multiplying the time an outage takes to
/// report.
const MAX_ATTEMPTS: u32 = 2;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// A body transfer that makes no progress for this long is abandoned; this is
/// what bounds downloads, whose size is not known in advance.
const STALL_GRACE: Duration = Duration::from_secs(5);
/// Uploads get [`ATTEMPT_TIMEOUT`] plus one second per this many bytes, so a
/// large snapshot on a slow link is not cut off while a small one still fails
/// fast.
const UPLOAD_BYTES_PER_SEC: u64 = 4 * 1024 * 1024;
/// Region when neither the configuration nor the AWS environment names one;
/// S3-compatible servers generally accept any.
const FALLBACK_REGION: &str = "us-east-1";

/// Objects in `bucket` under `prefix`.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    /// `s3://bucket/prefix`: names the store in errors.
    location: String,
    endpoint: Option<String>,
}

impl S3Store {
    /// Builds the client from the AWS SDK's standard configuration chain
    /// (environment, shared config files, web identity, container and
    /// instance roles), overridden by the `s3_*` keys. Makes no request:
    /// an unreachable S3 at start-up is a readiness problem, not a crash.
    pub async fn open(bucket: &str, config: &StorageConfig) -> Result<Self, StorageError> {
        let region = RegionProviderChain::first_try(config.s3_region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::from_static(FALLBACK_REGION));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF);
        let stalls = StalledStreamProtectionConfig::enabled()
            .grace_period(STALL_GRACE)
            .build();
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .timeout_config(timeouts)
            .retry_config(retries)
            .stalled_stream_protection(stalls)
            .load()
            .await;
        let mut s3 =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.s3_force_path_style);
        if let Some(endpoint) = &config.s3_endpoint {
            s3 = s3.endpoint_url(endpoint);
        }
        let prefix = normalize_prefix(config.s3_prefix.as_deref());
        Ok(S3Store {
            client: Client::from_conf(s3.build()),
            location: format!("s3://{bucket}/{prefix}"),
            bucket: bucket.to_owned(),
            prefix,
            endpoint: config.s3_endpoint.clone(),
        })
    }

    fn object_key(&self, key: &HeapKey) -> String {
        format!("{}{key}", self.prefix)
    }

    fn unavailable<E: Error>(&self, error: &E) -> StorageError {
        StorageError::unavailable(&self.location, error_chain(error))
    }

    /// A GET or HEAD of an object that failed other than by its absence. S3
    /// answers 403, not 404, for a missing key when the credentials may not
    /// list the bucket, so a 403 says that the heap may simply not exist.
    fn read_failed<E: Error + 'static>(&self, error: &SdkError<E, HttpResponse>) -> StorageError {
        let mut message = error_chain(error);
        if is_forbidden(error) {
            message.push_str(MAYBE_MISSING);
        }
        StorageError::unavailable(&self.location, message)
    }

    /// The object's size if it exists.
    async fn head(&self, key: &HeapKey) -> Result<Option<i64>, StorageError> {
        let response = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await;
        match response {
            Ok(head) => Ok(Some(head.content_length().unwrap_or(-1))),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(self.read_failed(&err)),
        }
    }

    /// Skips the upload when an object of the same size is already there:
    /// objects are immutable and named by their hash, and reads verify.
    async fn put_object(&self, object: HeapObject) -> Result<(), StorageError> {
        let key = object.key();
        let len = object.bytes().len() as u64;
        if self.head(key).await? == i64::try_from(len).ok() {
            return Ok(());
        }
        let attempt = ATTEMPT_TIMEOUT + Duration::from_secs(len / UPLOAD_BYTES_PER_SEC);
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(attempt)
            .operation_timeout(attempt * MAX_ATTEMPTS + INITIAL_BACKOFF * 2)
            .build();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .content_type("application/octet-stream")
            .body(ByteStream::from(object.bytes().clone()))
            .customize()
            .config_override(aws_sdk_s3::config::Builder::default().timeout_config(timeouts))
            .send()
            .await
            .map_err(|err| self.unavailable(&err))?;
        Ok(())
    }

    async fn get_object(&self, key: &HeapKey) -> Result<Vec<u8>, StorageError> {
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(err) if is_not_found(&err) => return Err(StorageError::NotFound(key.clone())),
            Err(err) => return Err(self.read_failed(&err)),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|err| self.unavailable(&err))?;
        let object = body.to_vec();
        let verify_key = key.clone();
        blocking(&self.location, move || {
            verify_key.verify(&object).map(|()| object)
        })
        .await
    }

    async fn check_bucket(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(drop)
            .map_err(|err| {
                if err
                    .raw_response()
                    .is_some_and(|raw| raw.status().as_u16() == 404)
                {
                    StorageError::unavailable(
                        &self.location,
                        format!("bucket {} does not exist", self.bucket),
                    )
                } else {
                    self.unavailable(&err)
                }
            })
    }
}

impl HeapStore for S3Store {
    fn put(&self, object: HeapObject) -> BoxFuture<'_, Result<(), StorageError>> {
        async move { self.put_object(object).await }.boxed()
    }

    fn get(&self, key: &HeapKey) -> BoxFuture<'_, Result<Vec<u8>, StorageError>> {
        let key = key.clone();
        async move { self.get_object(&key).await }.boxed()
    }

    fn contains(&self, key: &HeapKey) -> BoxFuture<'_, Result<bool, StorageError>> {
        let key = key.clone();
        async move {
            if self.head(&key).await?.is_some() {
                return Ok(true);
            }
            // A HEAD has no body to tell a missing object from a missing
            // bucket; only a miss pays for asking.
            self.check_bucket().await?;
            Ok(false)
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        self.check_bucket().boxed()
    }

    fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{} at {endpoint}", self.location),
            None => self.location.clone(),
        }
    }
}

/// `heaps` and `heaps/` both put objects at `heaps/<hash>`; no prefix puts
/// them at the bucket's root.
fn normalize_prefix(prefix: Option<&str>) -> String {
    match prefix.map(|prefix| prefix.trim_start_matches('/')) {
        None | Some("") => String::new(),
        Some(prefix) if prefix.ends_with('/') => prefix.to_owned(),
        Some(prefix) => format!("{prefix}/"),
    }
}

/// The object does not exist: `NoSuchKey` for GET, a bare 404 for HEAD (which
/// has no body to name an error code). A missing bucket is not a missing
/// object: it stays an error that names the bucket.
fn is_not_found<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    let SdkError::ServiceError(service) = error else {
        return false;
    };
    match service.err().code() {
        Some("NoSuchKey" | "NotFound") => true,
        Some(_) => false,
        None => service.raw().status().as_u16() == 404,
    }
}

/// What a 403 on reading an object adds to its message.
const MAYBE_MISSING: &str = " (access denied; without s3:ListBucket permission on the bucket, S3 \
    also answers so for a heap that is not stored)";

fn is_forbidden<E>(error: &SdkError<E, HttpResponse>) -> bool {
    error
        .raw_response()
        .is_some_and(|raw| raw.status().as_u16() == 403)
}

/// Every message in the error's source chain, joined by ": ", skipping
/// repeats: the SDK's top-level message alone ("dispatch failure", "service
/// error") does not say what went wrong.
fn error_chain(error: &dyn Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized_to_end_in_a_slash() {
        assert_eq!(normalize_prefix(None), "");
        assert_eq!(normalize_prefix(Some("")), "");
        assert_eq!(normalize_prefix(Some("heaps")), "heaps/");
        assert_eq!(normalize_prefix(Some("heaps/")), "heaps/");
        assert_eq!(normalize_prefix(Some("/a/b")), "a/b/");
    }

    #[tokio::test]
    async fn a_forbidden_read_says_the_heap_may_be_missing() {
        use aws_sdk_s3::config::http::HttpResponse;
        use aws_sdk_s3::error::ErrorMetadata;
        use aws_sdk_s3::operation::head_object::HeadObjectError;
        use aws_sdk_s3::primitives::SdkBody;

        let config = StorageConfig {
            s3_region: Some("us-east-1".to_owned()),
            ..StorageConfig::default()
        };
        let store = S3Store::open("b", &config)
            .await
            .expect("no request is made");
        let failure = |status: u16| {
            let raw = HttpResponse::new(status.try_into().expect("a status"), SdkBody::empty());
            let error =
                HeadObjectError::generic(ErrorMetadata::builder().code("Forbidden").build());
            store
                .read_failed(&SdkError::service_error(error, raw))
                .to_string()
        };
        assert!(failure(403).ends_with(MAYBE_MISSING), "{}", failure(403));
        assert!(!failure(500).contains("ListBucket"), "{}", failure(500));
    }

    #[test]
    fn error_chain_joins_distinct_causes() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(Wrapped(inner));
        assert_eq!(error_chain(&outer), "wrapped: connection refused");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wrapped")
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
}
