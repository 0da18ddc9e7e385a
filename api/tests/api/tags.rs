//! Tags: any enqueue may carry a small string map, kept in the record (its options), shown by
//! `GET /tasks/{id}`, filterable in the listing; bounded, with a 422 naming the field.
//! `POST /emails` and `POST /reports/{user_id}` add their own.

use serde_json::{Value, json};

use crate::common::TestApp;

async fn accepted(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned()
}

async fn tags_of(app: &TestApp, id: &str) -> Value {
    let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
    record["options"]["tags"].clone()
}

#[tokio::test]
async fn tags_reach_the_record_and_built_in_routes_add_their_own() {
    let app = TestApp::spawn().await;
    let id = accepted(
        app.post_json(
            "/tasks",
            &json!({"task": "noop", "args": null, "tags": {"user_id": "42", "tenant": "acme"}}),
        )
        .await,
    )
    .await;
    assert_eq!(tags_of(&app, &id).await, json!({"tenant": "acme", "user_id": "42"}));

    let email = json!({"to": "Ada@Example.COM", "subject": "s", "body": "b", "options": {"tags": {"user_id": "7"}}});
    let id = accepted(app.post_json("/emails", &email).await).await;
    assert_eq!(
        tags_of(&app, &id).await,
        json!({"kind": "email", "to_domain": "example.com", "user_id": "7"})
    );

    let id = accepted(app.post("/reports/u-9").await).await;
    assert_eq!(tags_of(&app, &id).await, json!({"kind": "report", "user_id": "u-9"}));

    // A caller's own value wins over the route's.
    let id = accepted(
        app.post_json("/reports/u-9", &json!({"options": {"tags": {"kind": "monthly"}}}))
            .await,
    )
    .await;
    assert_eq!(tags_of(&app, &id).await, json!({"kind": "monthly", "user_id": "u-9"}));

    let id = app.enqueue("noop", json!(null)).await;
    assert_eq!(tags_of(&app, &id).await, Value::Null, "no tags: none shown");
}

#[tokio::test]
async fn bad_tags_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let too_many: serde_json::Map<String, Value> = (0..17).map(|i| (format!("t{i}"), json!("x"))).collect();
    let cases = [
        (json!({"task": "noop", "args": null, "tags": too_many}), "tags"),
        (json!({"task": "noop", "args": null, "tags": {"has space": "x"}}), "tags"),
        (
            json!({"task": "noop", "args": null, "tags": {"user_id": "v".repeat(257)}}),
            "tags.user_id",
        ),
        (json!({"task": "noop", "args": null, "tags": {"user_id": 42}}), "tags.user_id"),
        (json!({"task": "noop", "args": null, "tags": ["user_id"]}), "tags"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/tasks", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], field, "{error}");
    }
}

#[tokio::test]
async fn the_listing_filters_by_tag() {
    let app = TestApp::spawn().await;
    let mut tagged = Vec::new();
    for i in 0..6 {
        let tags = json!({"user_id": if i % 2 == 0 { "a" } else { "b" }});
        let id = accepted(app.post_json("/tasks", &json!({"task": "noop", "args": i, "tags": tags})).await).await;
        if i % 2 == 0 {
            tagged.push(id);
        }
    }
    tagged.reverse(); // newest first
    let page: Value = app.get("/tasks?tag=user_id:a").await.json().await.unwrap();
    let ids: Vec<&str> = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, tagged);
    let response = app.get("/tasks?tag=nocolon").await;
    assert_eq!(response.status(), 422);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["field"], "tag");
}
