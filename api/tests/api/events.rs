//! `GET /tasks/{id}/events`: every event in order, closed after the terminal state, and a
//! reconnect with `Last-Event-ID` that misses nothing.

use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

/// Reads SSE events `(event, id, data)` until the stream ends or `limit` events arrived.
async fn read_events(mut response: reqwest::Response, limit: usize) -> Vec<(String, u64, Value)> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    while events.len() < limit {
        let Some(chunk) = response.chunk().await.unwrap() else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut kind, mut id, mut data) = (String::new(), 0, Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ").or_else(|| line.strip_prefix("event:")) {
                    kind = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")) {
                    id = v.trim().parse().unwrap();
                } else if let Some(v) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
                    data = serde_json::from_str(v.trim()).unwrap();
                }
            }
            if !kind.is_empty() {
                events.push((kind, id, data));
            }
        }
    }
    events
}

fn describe(events: &[(String, u64, Value)]) -> Vec<String> {
    events
        .iter()
        .map(|(kind, _, data)| match kind.as_str() {
            "state" => data["state"].as_str().unwrap().to_owned(),
            "progress" => format!("{}/{}", data["progress"]["current"], data["progress"]["total"]),
            other => other.to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn the_stream_gives_the_snapshot_then_every_event_in_order_and_ends() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("sleep", json!({"ms": 500})).await;
    let response = app.get(&format!("/tasks/{id}/events")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    app.start_worker(test_registry()).await;
    let events = read_events(response, 100).await;
    let mut expected = vec!["snapshot".to_owned(), "STARTED".to_owned()];
    expected.extend((1..=10).map(|i| format!("{i}/10")));
    expected.push("SUCCESS".into());
    assert_eq!(describe(&events), expected);
    assert_eq!(events[0].2["state"], "PENDING", "the snapshot is the record");
    let ids: Vec<u64> = events.iter().map(|e| e.1).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "consecutive ids: {ids:?}");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_misses_nothing() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = app.enqueue("sleep", json!({"ms": 600})).await;
    let first = read_events(app.get(&format!("/tasks/{id}/events")).await, 4).await;
    let last_id = first.last().unwrap().1;
    let second = app
        .client
        .get(app.url(&format!("/tasks/{id}/events")))
        .header("last-event-id", last_id.to_string())
        .send()
        .await
        .unwrap();
    let rest = read_events(second, 100).await;
    assert_eq!(rest.first().unwrap().1, last_id + 1, "resumes right after the last seen event");
    assert_eq!(describe(&rest).last().map(String::as_str), Some("SUCCESS"));
    let mut all: Vec<u64> = first.iter().skip(1).map(|e| e.1).chain(rest.iter().map(|e| e.1)).collect();
    all.dedup();
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "no gap: {all:?}");
}

#[tokio::test]
async fn a_finished_task_gives_its_snapshot_and_closes_and_unknown_ids_are_404() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = app.enqueue("add", json!([1, 1])).await;
    app.wait_terminal(&id).await;
    let events = read_events(app.get(&format!("/tasks/{id}/events")).await, 100).await;
    assert_eq!(describe(&events), ["snapshot"]);
    assert_eq!(events[0].2["result"], 2);
    assert_eq!(
        app.get("/tasks/default-0193a1b2c3d4e5f60718293a4b5c6d7e/events").await.status(),
        404
    );
}

/// A task that ends while its stream opens, between the stream's read of the event log and
/// its read of the record, still ends the stream: the log's version is read first, so the
/// end is in the snapshot or comes after it (read the other way round, the snapshot showed
/// the task pending with an id already past its end, and the stream waited forever).
#[tokio::test]
async fn a_task_that_ends_while_its_stream_opens_still_ends_the_stream() {
    let (app, proxy) = TestApp::spawn_behind_reply_cutter().await;
    let id = app.enqueue("noop", json!(null)).await;
    // The stream's read of the task's event log: HMGET <task> h w s z.
    proxy.hold_request(b"$1\r\nh\r\n$1\r\nw\r\n$1\r\ns\r\n$1\r\nz\r\n");
    let (client, url) = (app.client.clone(), app.url(&format!("/tasks/{id}/events")));
    let opening = tokio::spawn(async move { client.get(url).send().await.unwrap() });
    proxy.holding().await;

    app.start_worker(test_registry()).await;
    let task_id = celeriac::TaskId::parse(&id).unwrap();
    celeriac_testkit::eventually(std::time::Duration::from_secs(10), "the task succeeds", || async {
        let record = app.broker.get(&task_id).await.ok().flatten()?;
        (record.state == celeriac::TaskState::Success).then_some(())
    })
    .await;
    proxy.release();

    let response = opening.await.unwrap();
    let events = tokio::time::timeout(std::time::Duration::from_secs(10), read_events(response, 100))
        .await
        .expect("the stream ends with the task");
    let last = events.last().expect("at least the snapshot");
    assert_eq!(last.2["state"], "SUCCESS", "{:?}", describe(&events));
}
