//! `POST /emails`: send an e-mail in the background (`send_email` on queue `emails`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use celeriac::builtin::{SEND_EMAIL, SendEmailArgs};
use serde::Deserialize;
use utoipa::ToSchema;

use celeriac::call::CallOptions;

use crate::enqueue::{Accepted, add_default_tags, enqueue_fields};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::scope::Scope;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[schema(example = "ada@example.com")]
    pub to: String,
    #[schema(example = "Welcome")]
    pub subject: String,
    #[schema(example = "Thanks for signing up.")]
    pub body: String,
    /// Countdown, eta, expiry, retries, time limits, queue, tags (`kind` = `email` and
    /// `to_domain` are added unless given; add `user_id` for the user's report to count it).
    #[serde(default)]
    pub options: Option<CallOptions>,
}

/// Send an e-mail in the background.
#[utoipa::path(post, path = "/emails", tag = "emails",
    request_body = EmailRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]{1,200}$", description = "Repeats with the same key within 24 h return the first task"),
           ("traceparent" = Option<String>, Header, description = "W3C trace context; the run continues the trace (an invalid one is ignored)")),
    responses(
        (status = 202, description = "Stored and queued", body = Accepted, headers(("Location" = String, description = "The task's status URL"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field missing or invalid (e.g. a bad address)", body = ErrorBody),
        (status = 429, description = "The queue is full", body = ErrorBody),
        (status = 503, description = "Redis is unreachable; nothing was stored", body = ErrorBody),
    ))]
pub async fn post_email(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    ApiJson(request): ApiJson<EmailRequest>,
) -> Result<Response, ApiError> {
    let mut options = request.options.unwrap_or_default();
    let domain = request.to.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    add_default_tags(&mut options, [("kind", "email"), ("to_domain", domain.as_str())]);
    let args = SendEmailArgs {
        to: request.to,
        subject: request.subject,
        body: request.body,
    };
    enqueue_fields(&state, &headers, &scope, SEND_EMAIL, args, options).await
}
