//! What the handlers' annotations cannot say by themselves, applied once to the whole OpenAPI
//! document so it describes what the gateway really does (the API tester in
//! `scripts/python/api_check.py` holds it to that):
//!
//! - `#[serde(flatten)]` is rendered by utoipa as `allOf`, and each part keeps its own
//!   `additionalProperties: false`; under `allOf` every part then forbids the others'
//!   fields, so no request could match (`TaskRequest` was unsatisfiable). The gateway reads
//!   such a body as one object (`call::read_object`), so the parts are merged into one.
//! - Every JSON body is read by the one extractor (`extract::ApiJson`), whose rejections are
//!   the same everywhere: 400 malformed, 413 over the limit, 415 not JSON, 422 a field that
//!   does not fit. Each operation that takes a body documents them, once, here.

use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AdditionalProperties, Object, Schema, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// The document, completed as described in the module's header.
pub fn complete(mut api: OpenApi) -> OpenApi {
    if let Some(components) = api.components.as_mut() {
        let schemas = components.schemas.clone();
        for schema in components.schemas.values_mut() {
            if matches!(schema, RefOr::T(Schema::AllOf(_))) {
                *schema = RefOr::T(Schema::Object(merge(schema, &schemas)));
            }
        }
    }
    for item in api.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            document_body_errors(operation);
        }
    }
    api
}

type Schemas = std::collections::BTreeMap<String, RefOr<Schema>>;

/// One object schema from `schema`'s `allOf` parts (references followed, nested `allOf`s
/// merged too), keeping the outer description.
fn merge(schema: &RefOr<Schema>, schemas: &Schemas) -> Object {
    let schema = match schema {
        RefOr::Ref(r) => return merge(&schemas[r.ref_location.trim_start_matches("#/components/schemas/")], schemas),
        RefOr::T(schema) => schema,
    };
    let all = match schema {
        Schema::Object(object) => return object.clone(),
        Schema::AllOf(all) => all,
        _ => return Object::default(),
    };
    let mut object = Object::default();
    object.schema_type = SchemaType::Type(Type::Object);
    object.description = all.description.clone();
    let mut closed = false;
    for part in &all.items {
        let part = merge(part, schemas);
        object.properties.extend(part.properties);
        for name in part.required {
            if !object.required.contains(&name) {
                object.required.push(name);
            }
        }
        closed |= matches!(part.additional_properties.as_deref(), Some(AdditionalProperties::FreeForm(false)));
    }
    if closed {
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    }
    object
}

/// The extractor's answers, added to an operation that has a request body.
fn document_body_errors(operation: &mut Operation) {
    if operation.request_body.is_none() {
        return;
    }
    let answers = [
        ("400", "Malformed JSON"),
        ("413", "Body over the limit (`http.body_limit_bytes`)"),
        ("415", "Not JSON (`Content-Type` is not `application/json`)"),
        ("422", "A field missing or invalid"),
    ];
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.into())
            .or_insert_with(|| error_response(description).into());
    }
}

/// An error answer of the API: `description`, with the `ErrorBody` JSON every error has.
pub(crate) fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn a_flattened_schema_becomes_one_object() {
        let schemas: Schemas = serde_json::from_value(json!({
            "Inner": {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false},
            "Outer": {"allOf": [{"$ref": "#/components/schemas/Inner"},
                                {"type": "object", "required": ["b"], "properties": {"b": {"type": "string"}}}],
                      "description": "outer"}
        }))
        .unwrap();
        let merged = merge(&schemas["Outer"], &schemas);
        assert_eq!(
            serde_json::to_value(merged).unwrap(),
            json!({"type": "object", "description": "outer", "required": ["b"],
                   "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                   "additionalProperties": false})
        );
    }
}
