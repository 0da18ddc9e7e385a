//! OpenAPI schemas that utoipa's derive cannot infer from a field's Rust type (a
//! `serde_json::Value` that takes only some JSON shapes). Compiled with the `openapi` feature.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, Schema};

/// `expires`: seconds from now (above 0, at most a year), or an RFC 3339 time, or null.
pub fn expires() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .exclusive_minimum(Some(0.0))
                .maximum(Some(31_622_400.0)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "Do not start after this: seconds from now, or an RFC 3339 time. An expired task is `REVOKED` and never runs.",
        ))
        .into()
}
