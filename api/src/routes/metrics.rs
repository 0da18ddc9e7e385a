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
    let mut text = state.worker_metrics.render(&state.broker).await?;
    if state.settings.archive.enabled || state.history.is_some() {
        let archive = crate::archive_metrics::render(&state.broker, state.history.as_ref()).await?;
        // Before the closing `# EOF`, when the format has one.
        let at = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(at, &archive);
    }
    let text = scope.filter_metrics(&text);
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE))],
        text,
    )
        .into_response())
}
