//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready to accept tasks: Redis answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Redis reachable", body = Health),
    (status = 503, description = "Redis unreachable", body = ErrorBody),
))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.broker.ping().await?;
    Ok(Json(Health { status: "ready" }))
}
