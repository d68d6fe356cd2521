//! Extractors whose rejections are [`ApiError`]s, so a bad request gets the
//! same JSON error shape as every other failure (axum's own extractors answer
//! with plain text).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{HeaderMap, header, request::Parts};
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::{ApiError, ErrorCode};
use super::types::ExecRequest;
use crate::executor::RunRequest;

/// The media types whose body is the script itself.
const SCRIPT_MEDIA_TYPES: [&str; 3] = ["text/plain", "application/javascript", "text/javascript"];

/// What to run: a JSON [`ExecRequest`], or the raw script as `text/plain`,
/// `application/javascript` or `text/javascript` (then with the server's
/// default limits). Anything else is refused with 415 before the body is read.
#[derive(Debug)]
pub struct RunBody(pub RunRequest);

impl<S: Send + Sync> FromRequest<S> for RunBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let kind = BodyKind::of(request.headers())?;
        // `Bytes` honours the router's body limit; going over it is a 413 rejection.
        let body = Bytes::from_request(request, state).await?;
        let run = match kind {
            BodyKind::Json => Json::<JsonObject<ExecRequest>>::from_bytes(&body)?
                .0
                .0
                .into(),
            BodyKind::Script => RunRequest {
                // Reuses the body's buffer when nothing else holds it.
                code: String::from_utf8(Vec::from(body)).map_err(|error| {
                    ApiError::new(
                        ErrorCode::InvalidArgument,
                        format!("invalid argument `code`: the body is not UTF-8 ({error})"),
                    )
                })?,
                ..RunRequest::default()
            },
        };
        Ok(Self(run))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Script,
}

impl BodyKind {
    /// Classifies the `Content-Type` (case-insensitively, ignoring parameters
    /// other than a non-UTF-8 `charset`, which is refused: the code must be UTF-8).
    fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let mut parts = content_type.split(';');
        let essence = parts.next().unwrap_or_default().trim();
        let utf8 = parts.all(|parameter| match parameter.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
                let value = value.trim().trim_matches('"');
                value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
            }
            _ => true,
        });
        let is_json = essence.eq_ignore_ascii_case("application/json")
            || (starts_with_ignore_case(essence, "application/")
                && ends_with_ignore_case(essence, "+json"));
        let kind = if is_json {
            Some(Self::Json)
        } else if SCRIPT_MEDIA_TYPES
            .iter()
            .any(|script| essence.eq_ignore_ascii_case(script))
        {
            Some(Self::Script)
        } else {
            None
        };
        match kind {
            Some(kind) if utf8 => Ok(kind),
            _ => Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "unsupported Content-Type {content_type:?}: send JSON as application/json, \
                     or the script itself as text/plain or application/javascript (UTF-8)"
                ),
            )),
        }
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len()
        .checked_sub(suffix.len())
        .and_then(|start| text.get(start..))
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}

/// [`Query`] with a JSON 400 naming the parameter that failed.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// [`Json`] with the API's JSON errors (400 naming the field, 413, 415).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(JsonObject(value)) = Json::<JsonObject<T>>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// A `T` read from a JSON object and nothing else. serde's derived structs
/// also accept a JSON array of the field values in order (`["1 + 1"]` as
/// `{"code": "1 + 1"}`), a form no API client means to send and that hides
/// mistakes such as a JSON-encoded list of requests.
#[derive(Debug)]
struct JsonObject<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Self)
    }
}

/// [`Path`] with a JSON 400 (only a malformed percent-encoding can fail).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn kind(content_type: Option<&str>) -> Result<BodyKind, ErrorCode> {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(value).expect("a valid header"),
            );
        }
        BodyKind::of(&headers).map_err(|error| error.code())
    }

    #[test]
    fn json_and_script_media_types_are_recognised() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert_eq!(kind(Some(json)), Ok(BodyKind::Json), "{json}");
        }
        for script in [
            "text/plain",
            "text/plain; charset=UTF-8",
            "application/javascript",
            "text/javascript;charset=\"utf-8\"",
        ] {
            assert_eq!(kind(Some(script)), Ok(BodyKind::Script), "{script}");
        }
    }

    #[test]
    fn json_bodies_are_objects() {
        let object: JsonObject<ExecRequest> =
            serde_json::from_str(r#"{"code": "1 + 1"}"#).expect("an object");
        assert_eq!(object.0.code, "1 + 1");
        for not_object in [r#"["1 + 1"]"#, r#""1 + 1""#, "null", "7"] {
            let error = serde_json::from_str::<JsonObject<ExecRequest>>(not_object)
                .expect_err(not_object)
                .to_string();
            assert!(
                error.contains("expected a JSON object"),
                "{not_object}: {error}"
            );
        }
        let error = serde_json::from_str::<JsonObject<ExecRequest>>(r#"{"code": "1", "x": 2}"#)
            .expect_err("unknown field")
            .to_string();
        assert!(error.contains("unknown field `x`"), "{error}");
    }

    #[test]
    fn other_media_types_are_415() {
        for other in [
            None,
            Some(""),
            Some("application/x-www-form-urlencoded"),
            Some("text/html"),
            Some("text/plain; charset=latin1"),
            Some("application/jsonx"),
        ] {
            assert_eq!(
                kind(other),
                Err(ErrorCode::UnsupportedMediaType),
                "{other:?}"
            );
        }
    }
}
