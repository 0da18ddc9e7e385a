//! `GET /workers`: the live worker processes, as they describe themselves at each heartbeat.

use axum::Json;
use axum::extract::State;
use celeriac::broker::WorkerInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
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
pub async fn list_workers(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    Ok(Json(WorkerList {
        workers: state.broker.live_workers().await?,
    }))
}
