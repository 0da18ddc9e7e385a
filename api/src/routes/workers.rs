//! `GET /workers`: the live worker processes, as they describe themselves at each heartbeat.

use axum::Json;
use axum::extract::State;
use celeriac::broker::WorkerInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::scope::Scope;
use crate::state::AppState;

/// The live workers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerInfo>,
}

/// Live worker processes: host, pid, queues, concurrency, running and processed counts.
#[utoipa::path(get, path = "/workers", tag = "workers",
    responses(
        (status = 200, description = "Workers whose registration has not expired", body = WorkerList),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn list_workers(State(state): State<AppState>, scope: Scope) -> Result<Json<WorkerList>, ApiError> {
    let mut workers = state.broker.live_workers().await?;
    // A scoped token sees the workers that consume one of its queues.
    workers.retain(|w| w.queues.iter().any(|q| scope.allows_queue(q)));
    Ok(Json(WorkerList { workers }))
}
