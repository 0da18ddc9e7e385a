//! `GET /history/daily`: runs and failures per task per day (UTC) from the archive, for the
//! dashboard's chart.

use axum::Json;
use axum::extract::State;
use celeriac_archive::history::DailyCount;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// Days to cover, today included: 1 to 366 (default 14).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 366)]
    pub days: Option<String>,
}

/// Runs and failures per task per day, oldest day first.
#[utoipa::path(get, path = "/history/daily", tag = "history",
    params(DailyQuery),
    responses(
        (status = 200, description = "Counts per day and task", body = Vec<DailyCountView>),
        (status = 404, description = "No archive is configured on this gateway ([archive] database_url)", body = ErrorBody),
        (status = 422, description = "Invalid days", body = ErrorBody),
        (status = 503, description = "The archive is unreachable", body = ErrorBody),
    ))]
pub async fn daily(State(state): State<AppState>, ApiQuery(query): ApiQuery<DailyQuery>) -> Result<Json<Vec<DailyCount>>, ApiError> {
    let history = state
        .history
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no archive is configured on this gateway ([archive] database_url)".into()))?;
    let days = match query.days.as_deref() {
        None => 14,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| ApiError::invalid("days", "must be a whole number from 1 to 366"))?,
    };
    Ok(Json(history.daily_counts(days).await?))
}

/// One day's counts of one task (the schema of [`DailyCount`]).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DailyCountView {
    /// The day, UTC, e.g. `2026-12-03`.
    pub day: String,
    pub task: String,
    pub runs: i64,
    pub failures: i64,
}
