//! `GET /metrics`: queue, task and worker metrics in the Prometheus text format (see
//! `crate::metrics` for what is measured where).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorBody};
use crate::scope::Scope;
use crate::state::AppState;

/// Prometheus metrics: queue counters and depths, per-task counters and run and wait time
/// histograms, workers online.
#[utoipa::path(get, path = "/metrics", tag = "metrics", responses(
    (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
    (status = 503, description = "Redis is unreachable", body = ErrorBody),
))]
pub async fn metrics(State(state): State<AppState>, scope: Scope) -> Result<Response, ApiError> {
    let text = scope.filter_metrics(&state.worker_metrics.render(&state.broker).await?);
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE))],
        text,
    )
        .into_response())
}
