//! The gateway's routes, one module per resource, merged here with their OpenAPI paths.
//!
//! A route's role is declared here, once, by the group it is registered in:
//! - `open`: probes, and a run's progress (`/runs/{token}/progress`: the signed run token is
//!   the permission, so a remote task's endpoint can report without a bearer token); with `/openapi.json` and `/docs` (added in `startup`), never behind a token;
//! - `producer`: enqueue tasks and read them (a `producer` or an `admin` token);
//! - `admin`: everything that steers or observes the whole system (an `admin` token).
//!
//! The dashboard's files (`/dashboard`, `/dashboard/...`) are static and hold no data, like
//! `/docs`: they are served to anyone, so a browser (which cannot send a bearer header when
//! it navigates) can load the page and ask for a token; every call the page makes for data
//! goes to the `admin` routes and needs the token.
//!
//! [`crate::auth::protect`] puts a group behind its role and documents it in OpenAPI.

pub mod dashboard;
pub mod emails;
pub mod events;
pub mod health;
pub mod history;
pub mod listing;
pub mod metrics;
pub mod queues;
pub mod reports;
pub mod runs;
pub mod schedules;
pub mod task_types;
pub mod tasks;
pub mod webhooks;
pub mod workers;
pub mod workflows;

use crate::settings::Role;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::protect;
use crate::error::ApiError;
use crate::state::AppState;

/// Every route, with the OpenAPI document built from the same handlers on top of `base` (the
/// document's info, tags and security scheme: [`crate::openapi::ApiDoc`], passed in so this
/// module does not import the document that is built from it).
pub fn router(base: utoipa::openapi::OpenApi) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let open = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(runs::progress));
    let producer = OpenApiRouter::new()
        .routes(routes!(emails::post_email))
        .routes(routes!(reports::post_report))
        .routes(routes!(reports::download_report))
        .routes(routes!(tasks::post_task))
        .routes(routes!(tasks::get_task))
        .routes(routes!(events::task_events))
        .routes(routes!(workflows::post_workflow))
        .routes(routes!(workflows::get_workflow))
        .routes(routes!(runs::claim))
        .routes(routes!(runs::heartbeat))
        .routes(routes!(runs::complete))
        .routes(routes!(runs::fail));
    let admin = OpenApiRouter::new()
        .routes(routes!(tasks::revoke_task))
        .routes(routes!(tasks::retry_task))
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
        .routes(routes!(metrics::metrics))
        .routes(routes!(listing::list_tasks))
        .routes(routes!(history::daily))
        .routes(routes!(queues::list_queues))
        .routes(routes!(queues::pause_queue))
        .routes(routes!(queues::resume_queue))
        .routes(routes!(queues::purge_queue))
        .routes(routes!(queues::set_shards))
        .routes(routes!(queues::set_limits, queues::delete_limits))
        .routes(routes!(webhooks::get_webhook, webhooks::put_webhook, webhooks::delete_webhook))
        .routes(routes!(queues::dead_letters))
        .routes(routes!(workers::list_workers))
        .routes(routes!(task_types::list_task_types))
        .routes(routes!(
            task_types::get_task_type,
            task_types::put_task_type,
            task_types::delete_task_type
        ));
    let (router, api) = OpenApiRouter::with_openapi(base)
        .merge(open)
        .merge(protect(producer, Role::Producer))
        .merge(protect(admin, Role::Admin))
        .split_for_parts();
    let api = crate::contract::complete(api);
    let router = router
        .merge(dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    (router, api)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
