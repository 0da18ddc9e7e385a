//! The OpenAPI 3.1 document, built from the handlers' annotations. `openapi.yaml` at the
//! repository root is this document as YAML; a test fails when they drift apart, and
//! `celeriac-api openapi > openapi.yaml` writes it anew. The bearer scheme is declared here;
//! which operations need it (and which role) is marked by `auth::protect`. [`ApiDoc`] is the
//! base the routes (`routes::router`) add their paths to.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Celeriac", description = "Background jobs over HTTP: enqueue, then poll state, progress and result.", license(name = "MIT OR Apache-2.0")),
    modifiers(&BearerScheme),
    // Reached only through fields marked `no_recursion` (a workflow's steps nest), so not
    // collected from the handlers: listed here, or `Step` would refer to a missing schema.
    components(schemas(celeriac::workflow::Chord)),
    tags(
        (name = "tasks", description = "Enqueue any registered task and read task records"),
        (name = "emails", description = "Send e-mail in the background"),
        (name = "reports", description = "Build and download reports"),
        (name = "workflows", description = "Chains, groups and chords of tasks"),
        (name = "queues", description = "Queue depths, rates, pause, resume, purge and dead letters"),
        (name = "workers", description = "Live worker processes"),
        (name = "task-types", description = "Remote task types: tasks whose code is an HTTP endpoint"),
        (name = "pull", description = "Workers over HTTP: claim tasks with a long poll, then heartbeat, progress, complete or fail with each run's token"),
        (name = "schedules", description = "Periodic schedules fired by celeriac-beat"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "history", description = "Counts from the PostgreSQL archive of tasks that ended"),
        (name = "health", description = "Probes"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme: tokens from the settings, each with a role.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(
            "A token from the gateway's settings (`[auth]`). A `producer` token may enqueue and read tasks; an \
             `admin` token may do everything. The probes, `/openapi.json` and `/docs` need none."
                .into(),
        );
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(crate::auth::SCHEME, SecurityScheme::Http(http));
    }
}

/// The document as YAML, as checked in at the repository root.
pub fn yaml() -> String {
    let (_, api) = crate::routes::router(ApiDoc::openapi());
    api.to_yaml().expect("the OpenAPI document serializes")
}
