//! The OpenAPI 3.1 document, built from the handlers' annotations. `openapi.yaml` at the
//! repository root is this document as YAML; a test fails when they drift apart, and
//! `celeriac-api openapi > openapi.yaml` writes it anew.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Celeriac", description = "Background jobs over HTTP: enqueue, then poll state, progress and result.", license(name = "MIT OR Apache-2.0")),
    tags(
        (name = "tasks", description = "Enqueue any registered task and read task records"),
        (name = "emails", description = "Send e-mail in the background"),
        (name = "reports", description = "Build and download reports"),
        (name = "workflows", description = "Chains, groups and chords of tasks"),
        (name = "schedules", description = "Periodic schedules fired by celeriac-beat"),
        (name = "health", description = "Probes"),
    )
)]
pub struct ApiDoc;

/// The document as YAML, as checked in at the repository root.
pub fn yaml() -> String {
    let (_, api) = crate::routes::router();
    api.to_yaml().expect("the OpenAPI document serializes")
}
