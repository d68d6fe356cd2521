//! Bearer JWTs, verified against the authorization server's JWKS.
//!
//! The key set is fetched on first use and cached. A token whose `kid` is
//! not in the cache triggers a refetch (the server may have rotated keys),
//! but at most one every [`REFETCH_INTERVAL`], so a stream of tokens with
//! made-up key ids cannot turn this server into a load generator against the
//! authorization server. The cache is also refreshed when older than
//! [`MAX_AGE`], so that a key the server withdrew stops working.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::{Mutex, RwLock};

use super::super::HttpError;

/// Least time between two fetches of the JWKS.
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// A cached key set older than this is refetched before use.
const MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Bound on one JWKS fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// Why a JWT was refused. The text goes into `WWW-Authenticate`'s
/// `error_description`, so it names the problem without echoing the token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("JWTs signed with {0:?} are not accepted")]
    Algorithm(Algorithm),
    #[error("no key in the authorization server's key set matches the token")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued for another audience")]
    Audience,
    #[error("the token was issued by another issuer")]
    Issuer,
    #[error("the token's signature does not verify")]
    Signature,
    /// jsonwebtoken reports a claim of the wrong type (an `exp` string) as
    /// missing too.
    #[error("the token lacks the {0} claim, or it is not of the right type")]
    MissingClaim(String),
    #[error("the token was refused: {0}")]
    Other(String),
    /// Not the token's fault: the key set to check it against could not be
    /// fetched (and none cached has its key). Answered 503, not 401, so a
    /// client does not throw away a good token.
    #[error("the authorization server's key set cannot be fetched ({0}); try again later")]
    KeySetUnavailable(String),
    /// Not the token's fault either, as far as anyone can tell: its key is
    /// not in the key set fetched moments ago, and the set may not be
    /// fetched again sooner. A key the authorization server has just added
    /// is found then; a client told 401 would throw a good token away.
    #[error(
        "the token's key is not in the authorization server's key set as fetched {}s ago; \
         it may be fetched again in {}s",
        .fetched_ago.as_secs(), self.retry_after().unwrap_or_default().as_secs()
    )]
    KeyNotFetchedYet {
        fetched_ago: Duration,
        retry_after: Duration,
    },
}

impl JwtError {
    /// How long a client should wait before trying the token again, for the
    /// refusals that are no verdict on the token (answered 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::KeySetUnavailable(_) => Some(KEY_SET_RETRY_AFTER),
            // Whole seconds, rounded up: a client that waits as told finds
            // the set fetchable again.
            Self::KeyNotFetchedYet { retry_after, .. } => Some(Duration::from_secs(
                retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            ))
            .map(|secs| secs.max(Duration::from_secs(1))),
            _ => None,
        }
    }
}

/// How long a client should wait before retrying when the key set could not
/// be fetched: the next fetch is not tried sooner.
pub const KEY_SET_RETRY_AFTER: Duration = REFETCH_INTERVAL;

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        match error.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidAudience => Self::Audience,
            ErrorKind::InvalidIssuer => Self::Issuer,
            ErrorKind::InvalidSignature => Self::Signature,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => Self::Malformed,
            _ => Self::Other(error.to_string()),
        }
    }
}

/// Verifies bearer JWTs: signature by a JWKS key, `exp`, `nbf`, `iss`, `aud`.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    jwks: Jwks,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_url", &self.jwks.url)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(HttpError::JwksClient)?;
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            jwks: Jwks {
                url: jwks_url.to_owned(),
                client,
                cache: RwLock::new(Cached::default()),
                last_fetch: Mutex::new(None),
            },
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks `token`; `Ok` means every check passed.
    pub async fn verify(&self, token: &str) -> Result<(), JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !is_asymmetric(header.alg) {
            // A symmetric algorithm would let anyone holding a public JWKS
            // key "sign" tokens with it.
            return Err(JwtError::Algorithm(header.alg));
        }
        let key = self.jwks.key_for(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)?;
        Ok(())
    }
}

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The cached key set and where it comes from.
struct Jwks {
    url: String,
    client: reqwest::Client,
    cache: RwLock<Cached>,
    /// When the last fetch started; also serializes fetches.
    last_fetch: Mutex<Option<Instant>>,
}

/// What asking for a fresh key set gave.
enum Refetch {
    /// A set fetched just now.
    Fetched(Arc<JwkSet>),
    /// The cached set: the last fetch started `since` ago, too recently to
    /// fetch again.
    Throttled { keys: Arc<JwkSet>, since: Duration },
    /// The fetch failed; the cache records why.
    Failed,
}

/// The last key set fetched, and when (`None`: never).
struct Cached {
    keys: Arc<JwkSet>,
    fetched_at: Option<Instant>,
    /// Why the last fetch failed, until one succeeds.
    failure: Option<String>,
}

impl Default for Cached {
    fn default() -> Self {
        Self {
            keys: Arc::new(JwkSet { keys: Vec::new() }),
            fetched_at: None,
            failure: None,
        }
    }
}

impl Jwks {
    /// The key that should have signed a token with this `kid` and `alg`.
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, JwtError> {
        let (keys, fresh) = {
            let cache = self.cache.read().await;
            let fresh = cache
                .fetched_at
                .is_some_and(|fetched| fetched.elapsed() < MAX_AGE);
            (Arc::clone(&cache.keys), fresh)
        };
        if fresh && let Some(key) = select(&keys, kid, alg) {
            return Ok(key);
        }
        let (keys, throttled) = match self.refetch().await {
            Refetch::Fetched(keys) => (keys, None),
            Refetch::Failed => (keys, None),
            Refetch::Throttled { keys, since } => (keys, Some(since)),
        };
        if let Some(key) = select(&keys, kid, alg) {
            return Ok(key);
        }
        if let Some(failure) = &self.cache.read().await.failure {
            return Err(JwtError::KeySetUnavailable(failure.clone()));
        }
        // A kid the set has, with a key of another algorithm, is the token's
        // fault: no refetch would change that.
        let kid_unknown = kid.is_some_and(|kid| {
            !keys
                .keys
                .iter()
                .any(|jwk| jwk.common.key_id.as_deref() == Some(kid))
        });
        match throttled {
            Some(since) if kid_unknown => Err(JwtError::KeyNotFetchedYet {
                fetched_ago: since,
                retry_after: REFETCH_INTERVAL.saturating_sub(since),
            }),
            _ => Err(JwtError::UnknownKey),
        }
    }

    /// Fetches the key set unless a fetch started within
    /// [`REFETCH_INTERVAL`] (then the cached set is the newest there is).
    async fn refetch(&self) -> Refetch {
        let mut last_fetch = self.last_fetch.lock().await;
        if let Some(since) = last_fetch.map(|at| at.elapsed())
            && since < REFETCH_INTERVAL
        {
            // Someone fetched recently (maybe while we waited for the lock):
            // use what is cached.
            let keys = Arc::clone(&self.cache.read().await.keys);
            return Refetch::Throttled { keys, since };
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                tracing::debug!(url = %self.url, keys = keys.keys.len(), "fetched JWKS");
                *self.cache.write().await = Cached {
                    keys: Arc::clone(&keys),
                    fetched_at: Some(Instant::now()),
                    failure: None,
                };
                Refetch::Fetched(keys)
            }
            Err(error) => {
                tracing::warn!(
                    url = %self.url,
                    %error,
                    "cannot fetch the JWKS; JWTs are checked against the cached keys"
                );
                self.cache.write().await.failure = Some(describe_fetch_error(&error));
                Refetch::Failed
            }
        }
    }

    /// Keys this crate cannot parse (new key types, say) are skipped, so one
    /// of them does not cost us the whole set.
    async fn fetch(&self) -> Result<JwkSet, reqwest::Error> {
        #[derive(serde::Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
            .collect();
        Ok(JwkSet { keys })
    }
}

/// A failed fetch in a few words, without the URL (clients see it).
fn describe_fetch_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "it did not answer in time".to_owned()
    } else if error.is_connect() {
        "it cannot be reached".to_owned()
    } else if let Some(status) = error.status() {
        format!("it answered HTTP {status}")
    } else if error.is_decode() {
        "its answer is not a key set".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

/// The key for `kid` (or the only suitable key when the token names none),
/// if it may verify `alg`.
fn select(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let suitable = |jwk: &&Jwk| usable_for(jwk, alg);
    let jwk = match kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(suitable)
            .find(|jwk| jwk.common.key_id.as_deref() == Some(kid))?,
        None => {
            let mut candidates = keys.keys.iter().filter(suitable);
            let only = candidates.next()?;
            // With several candidates and no kid, guessing would be wrong.
            candidates.next().is_none().then_some(only)?
        }
    };
    DecodingKey::from_jwk(jwk).ok()
}

/// Whether `jwk` is a signing key of the family `alg` belongs to (and, if it
/// names an algorithm, that one).
fn usable_for(jwk: &Jwk, alg: Algorithm) -> bool {
    let for_signing = matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    );
    let family = match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(params), Algorithm::ES256) => {
            params.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(params), Algorithm::ES384) => {
            params.curve == EllipticCurve::P384
        }
        // jsonwebtoken slices the first 32 bytes of an Ed25519 key without a
        // length check; an unpadded base64url Ed25519 key has 43 characters.
        (AlgorithmParameters::OctetKeyPair(params), Algorithm::EdDSA) => {
            params.curve == EllipticCurve::Ed25519 && params.x.trim_end_matches('=').len() == 43
        }
        _ => false,
    };
    let named = jwk
        .common
        .key_algorithm
        .is_none_or(|named| Algorithm::from_str(&named.to_string()).ok() == Some(alg));
    for_signing && family && named
}
