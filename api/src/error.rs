//! One error type for the gateway, carrying its status code and answered as
//! `{"error": {"code", "message", ...}}`. Internal causes (Redis errors, panics) are logged
//! and never shown to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use celeriac::BrokerError;
use celeriac::catalog::CallError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `invalid_field` or `unknown_task`.
    #[schema(example = "invalid_field")]
    pub code: &'static str,
    /// What went wrong, for humans.
    pub message: String,
    /// The request field at fault, for `invalid_field`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The task names this gateway accepts, for `unknown_task`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_tasks: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than this gateway accepts")]
    PayloadTooLarge,
    /// A field over its size limit (the arguments over `tasks.max_args_bytes`).
    #[error("{message}")]
    FieldTooLarge { field: String, message: String },
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("unknown task {name:?}")]
    UnknownTask { name: String, known: Vec<String> },
    #[error("{0}")]
    IdempotencyKeyReused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    /// No bearer token (`invalid_token: false`), or one that is not valid.
    #[error("{}", if *invalid_token { "the bearer token is not valid" } else { "this endpoint needs a bearer token: send `Authorization: Bearer <token>`" })]
    Unauthorized { invalid_token: bool },
    /// A valid token whose role may not use the endpoint.
    #[error("{0}")]
    Forbidden(String),
    #[error("queue {queue} is full ({depth} pending)")]
    QueueFull { queue: String, depth: u64 },
    #[error("the broker is unreachable")]
    Unavailable(#[source] BrokerError),
    /// The PostgreSQL archive failed to answer (history only; Redis may be fine).
    #[error("the archive is unreachable")]
    ArchiveUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::UnknownTask { name, known } => Self::UnknownTask { name, known },
            CallError::Invalid(e) => Self::InvalidField {
                field: e.field,
                message: e.message,
            },
            e @ CallError::ArgsTooLarge { .. } => Self::FieldTooLarge {
                field: "args".into(),
                message: e.to_string(),
            },
        }
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge | Self::FieldTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidField { .. } | Self::UnknownTask { .. } | Self::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::ArchiveUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge | Self::FieldTooLarge { .. } => "payload_too_large",
            Self::InvalidField { .. } => "invalid_field",
            Self::UnknownTask { .. } => "unknown_task",
            Self::IdempotencyKeyReused(_) => "idempotency_key_reused",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthorized { .. } => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::QueueFull { .. } => "queue_full",
            Self::Unavailable(_) => "unavailable",
            Self::ArchiveUnavailable(_) => "archive_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// What the client is told; internal details stay in the logs.
    fn public_message(&self) -> String {
        match self {
            // durability = "replicated": the master has it, no replica acknowledged it in time.
            Self::Unavailable(BrokerError::NotReplicated(_)) => "no Redis replica acknowledged the task in time; it is stored on the master and may still run: retry with the same Idempotency-Key to be sure it runs once".into(),
            Self::Unavailable(_) => "the task broker is unreachable; nothing was stored, try again shortly".into(),
            Self::ArchiveUnavailable(_) => "the archive (PostgreSQL) did not answer; try again shortly".into(),
            Self::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl From<celeriac_archive::sqlx::Error> for ApiError {
    fn from(e: celeriac_archive::sqlx::Error) -> Self {
        Self::ArchiveUnavailable(e.to_string())
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::QueueFull { queue, depth } => Self::QueueFull {
                queue: queue.to_string(),
                depth,
            },
            BrokerError::Duplicate(id) => Self::Conflict(format!("a task with id {id} exists already")),
            BrokerError::Redis(_) | BrokerError::NotReplicated(_) => Self::Unavailable(e),
            BrokerError::Protocol(detail) | BrokerError::InvalidTask(detail) => Self::Internal(detail),
            BrokerError::InvalidLimit(e) => Self::invalid(e.field, e.message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "broker unavailable"),
            Self::ArchiveUnavailable(cause) => tracing::warn!(error = %cause, "archive unavailable"),
            Self::Internal(detail) => tracing::error!(detail = %detail, "internal error"),
            _ => {}
        }
        let (field, known_tasks) = match &self {
            Self::InvalidField { field, .. } | Self::FieldTooLarge { field, .. } => (Some(field.clone()), None),
            Self::UnknownTask { known, .. } => (None, Some(known.clone())),
            _ => (None, None),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
                field,
                known_tasks,
            },
        };
        let mut response = (self.status_code(), axum::Json(body)).into_response();
        let retry_after = match self {
            Self::QueueFull { .. } => Some("5"),
            Self::Unavailable(_) | Self::ArchiveUnavailable(_) => Some("2"),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        if let Self::Unauthorized { invalid_token } = self {
            // RFC 6750: an error code only when a token was sent.
            let challenge = if invalid_token {
                r#"Bearer realm="celeriac", error="invalid_token""#
            } else {
                r#"Bearer realm="celeriac""#
            };
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
