//! The gateway's routes, one module per resource, merged here with their OpenAPI paths.

pub mod emails;
pub mod events;
pub mod health;
pub mod reports;
pub mod schedules;
pub mod tasks;
pub mod workflows;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Every route, with the OpenAPI document built from the same handlers.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(emails::post_email))
        .routes(routes!(reports::post_report))
        .routes(routes!(reports::download_report))
        .routes(routes!(tasks::post_task))
        .routes(routes!(tasks::get_task))
        .routes(routes!(events::task_events))
        .routes(routes!(tasks::revoke_task))
        .routes(routes!(tasks::retry_task))
        .routes(routes!(workflows::post_workflow))
        .routes(routes!(workflows::get_workflow))
        .routes(routes!(workflows::revoke_workflow))
        .routes(routes!(schedules::list_schedules))
        .routes(routes!(
            schedules::get_schedule,
            schedules::put_schedule,
            schedules::delete_schedule
        ))
        .routes(routes!(schedules::pause_schedule))
        .routes(routes!(schedules::resume_schedule))
        .routes(routes!(schedules::run_schedule))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .split_for_parts();
    let router = router.fallback(not_found).method_not_allowed_fallback(method_not_allowed);
    (router, api)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
