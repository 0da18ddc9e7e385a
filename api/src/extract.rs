//! JSON body extractors whose rejections speak our error shape: 400 for malformed JSON,
//! 415 for a wrong content type, 413 over the body limit, 422 naming the field that does not
//! fit; and the parsers of path and query parameters several routes share (a queue name, a
//! page size), so no route module imports another for them.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use celeriac::QueueName;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::Json`, with [`ApiError`] rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// A JSON body that may also be absent (an empty body gives `T::default()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    /// Every body the routes take is a JSON object: anything else is refused before serde,
    /// whose derived structs would also take a sequence of their fields (`[null, null]`).
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (is_json, body) = read(req, state).await?;
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if is_json && first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        }
        decode(is_json, &body).map(Self)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (is_json, body) = read(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        decode(is_json, &body).map(Self)
    }
}

async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<(bool, Bytes), ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    let body = Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::MalformedJson("the request body could not be read".into()),
        })?;
    Ok((is_json, body))
}

fn decode<T: DeserializeOwned>(is_json: bool, body: &[u8]) -> Result<T, ApiError> {
    if !is_json {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as JSON with `Content-Type: application/json`".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = e.inner().to_string();
        match e.inner().classify() {
            serde_json::error::Category::Data => {
                let path = e.path().to_string();
                let field = if path == "." { field_of(&message) } else { path };
                ApiError::InvalidField { field, message }
            }
            _ => malformed(&message),
        }
    })?;
    de.end().map_err(|e| malformed(&e.to_string()))?;
    Ok(value)
}

fn malformed(message: &str) -> ApiError {
    ApiError::MalformedJson(format!("the body is not valid JSON: {message}"))
}

/// Finds the field a serde message is about ("missing field `to`"), else `body`.
fn field_of(message: &str) -> String {
    message
        .split("field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
        .unwrap_or_else(|| "body".into())
}

/// Like `axum::extract::Query`, with [`ApiError`] rejections: a query string that does not
/// fit (a repeated or malformed parameter) is a 422 naming the parameter, as a bad value is.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                let message = rejection.body_text();
                Err(ApiError::invalid(field_of(&message).replace("body", "query"), message))
            }
        }
    }
}

/// A queue name from the path or the query; the error names the field `queue`.
pub(crate) fn parse_queue(raw: &str) -> Result<QueueName, ApiError> {
    QueueName::parse(raw).map_err(|message| ApiError::invalid("queue", message))
}

/// Default and largest page sizes.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// `limit`: 1 to 200, default 50.
pub(crate) fn parse_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        to: String,
        options: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        max_retries: u32,
    }

    fn field(body: &str) -> String {
        match decode::<Body>(true, body.as_bytes()) {
            Err(ApiError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field("{}"), "to");
        assert_eq!(field(r#"{"to": 5}"#), "to");
        assert_eq!(field(r#"{"to": "a", "options": {"max_retries": "x"}}"#), "options.max_retries");
        assert_eq!(field(r#"{"to": "a", "prio": 1}"#), "prio");
    }

    #[test]
    fn syntax_errors_and_wrong_types_are_told_apart() {
        assert!(matches!(decode::<Body>(true, b"{\"to\": "), Err(ApiError::MalformedJson(_))));
        assert!(matches!(
            decode::<Body>(true, br#"{"to": "a"} trailing"#),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(decode::<Body>(false, b"{}"), Err(ApiError::UnsupportedMediaType(_))));
    }
}
