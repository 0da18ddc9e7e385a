//! `openapi.yaml` at the repository root is the document the code produces.
//! After changing the API: `cargo run -p celeriac-api -- openapi > openapi.yaml`.

#[test]
fn the_checked_in_spec_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    let generated = celeriac_api::openapi::yaml();
    assert!(
        checked_in == generated,
        "openapi.yaml is out of date: run `cargo run -p celeriac-api -- openapi > openapi.yaml`"
    );
}

#[test]
fn the_spec_is_openapi_3_1_and_documents_every_route() {
    let yaml = celeriac_api::openapi::yaml();
    assert!(yaml.starts_with("openapi: 3.1"), "{}", &yaml[..40]);
    for path in [
        "/emails:",
        "/reports/{user_id}:",
        "/reports/{task_id}/file:",
        "/tasks:",
        "/tasks/{id}:",
        "/schedules:",
        "/schedules/{name}:",
        "/schedules/{name}/pause:",
        "/schedules/{name}/resume:",
        "/schedules/{name}/run:",
        "/healthz:",
        "/readyz:",
    ] {
        assert!(yaml.contains(path), "missing {path}");
    }
}
