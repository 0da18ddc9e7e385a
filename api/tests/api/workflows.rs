//! Workflows through the gateway with a real worker: chain, group, chord, nesting, errors,
//! revoke, and every kind of bad description.

use std::time::Duration;

use celeriac::workflow::{Plan, Step};
use celeriac_testkit::ReplyCutter;
use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

async fn start(app: &TestApp, description: Value) -> String {
    let response = app.post_json("/workflows", &description).await;
    assert_eq!(response.status(), 202, "{description}");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/workflows/{}", body["workflow_id"].as_str().unwrap()));
    body["workflow_id"].as_str().unwrap().to_owned()
}

async fn finished(app: &TestApp, id: &str) -> Value {
    finished_within(app, id, Duration::from_secs(30)).await
}

async fn finished_within(app: &TestApp, id: &str, deadline: Duration) -> Value {
    celeriac_testkit::eventually(deadline, &format!("workflow {id} finishes"), || async {
        let status: Value = app.get(&format!("/workflows/{id}")).await.json().await.ok()?;
        (status["state"] != "RUNNING").then_some(status)
    })
    .await
}

/// Asserts that the workflow `status` succeeded with `result`.
fn assert_succeeded(status: &Value, result: Value) {
    assert_eq!(
        (status["state"].as_str(), &status["result"]),
        (Some("SUCCESS"), &result),
        "{status}"
    );
}

#[tokio::test]
async fn a_chain_passes_each_result_on() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = start(
        &app,
        json!({"chain": [{"task": "add", "args": [2, 2]}, {"task": "add", "args": [4]}, {"task": "add", "args": [8]}]}),
    )
    .await;
    let status = finished(&app, &id).await;
    assert_succeeded(&status, json!(16));
    assert!(status["members"].as_array().unwrap().iter().all(|m| m["state"] == "SUCCESS"));
}

#[tokio::test]
async fn a_chord_of_a_hundred_sums_to_9900() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let group: Vec<Value> = (0..100).map(|i| json!({"task": "add", "args": [i, i]})).collect();
    let id = start(&app, json!({"chord": {"group": group, "callback": {"task": "add"}}})).await;
    let status = finished(&app, &id).await;
    assert_eq!(status["result"], 9900, "{status}");
}

#[tokio::test]
async fn a_group_collects_results_in_order_and_nesting_works() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let group = start(
        &app,
        json!({"group": [{"task": "sleep", "args": {"ms": 200}}, {"task": "echo", "args": "b"}, {"task": "add", "args": [1, 2]}]}),
    )
    .await;
    assert_eq!(finished(&app, &group).await["result"], json!([{"slept_ms": 200}, "b", 3]));
    // echo(1) -> [ chain(add([1]), add([2])) , add([10]) ] -> add(the list)
    let nested = json!({"chain": [
        {"task": "echo", "args": 1},
        {"group": [{"chain": [{"task": "add", "args": [1]}, {"task": "add", "args": [2]}]}, {"task": "add", "args": [10]}]},
        {"task": "add"}
    ]});
    let id = start(&app, nested).await;
    let status = finished(&app, &id).await;
    assert_eq!(status["result"], 15, "(1+1)+2 = 4 and 1+10 = 11; 4 + 11 = 15: {status}");
}

#[tokio::test]
async fn a_failed_member_stops_the_chord_and_runs_the_error_callback_once() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let description = json!({
        "chord": {"group": [{"task": "add", "args": [1, 1]}, {"task": "fail", "args": {"message": "member broke"}}], "callback": {"task": "add"}},
        "on_error": {"task": "echo", "args": {"note": "cleanup"}}
    });
    let id = start(&app, description).await;
    let status = finished(&app, &id).await;
    assert_eq!(status["state"], "FAILURE");
    assert_eq!(status["failed"]["error"]["message"], "member broke");
    let members = status["members"].as_array().unwrap();
    let callback = &members[2];
    assert_eq!(callback["state"], "WAITING", "the callback never ran: {status}");
    let on_error = members.iter().find(|m| m["on_error"] == true).unwrap();
    let record = app.wait_terminal(on_error["task_id"].as_str().unwrap()).await;
    assert_eq!(record["result"]["note"], "cleanup");
    assert_eq!(record["result"]["input"]["task_id"], status["failed"]["task_id"]);
    assert_eq!(record["deliveries"], 1);
}

#[tokio::test]
async fn revoking_a_workflow_stops_its_members() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = start(
        &app,
        json!({"chain": [{"task": "sleep", "args": {"ms": 60000}}, {"task": "add", "args": [1]}]}),
    )
    .await;
    let status: Value = app.get(&format!("/workflows/{id}")).await.json().await.unwrap();
    let first = status["members"][0]["task_id"].as_str().unwrap().to_owned();
    celeriac_testkit::eventually(Duration::from_secs(30), "the first member starts", || async {
        let r: Value = app.get(&format!("/tasks/{first}")).await.json().await.ok()?;
        (r["state"] == "STARTED").then_some(())
    })
    .await;
    let response = app.post(&format!("/workflows/{id}/revoke")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.wait_terminal(&first).await["state"], "REVOKED");
    let status: Value = app.get(&format!("/workflows/{id}")).await.json().await.unwrap();
    assert_eq!(
        (status["state"].as_str(), status["members"][1]["state"].as_str()),
        (Some("REVOKED"), Some("WAITING"))
    );
    let again = app.post(&format!("/workflows/{id}/revoke")).await;
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn bad_descriptions_are_422_naming_the_problem() {
    let app = TestApp::spawn().await;
    let mut deep = json!({"task": "noop"});
    for _ in 0..12 {
        deep = json!({"chain": [deep]});
    }
    let cases = [
        (json!({"group": []}), "invalid_field", "at least one"),
        (
            json!({"chain": [{"task": "noop"}, {"chord": {"group": [], "callback": {"task": "add"}}}]}),
            "invalid_field",
            "at least one",
        ),
        (deep, "invalid_field", "deeper"),
        (json!({"task": "noop", "chain": [{"task": "noop"}]}), "invalid_field", "exactly one"),
        (json!({"chain": [{"task": "no_such_task"}]}), "unknown_task", "no_such_task"),
        (json!({"chain": [{"task": "noop", "queue": "{x}"}]}), "invalid_field", "queue"),
        (
            json!({"group": [{"task": "noop", "options": {"time_limit": -1}}]}),
            "invalid_field",
            "time_limit",
        ),
        (json!({"graph": {}}), "invalid_field", "graph"),
    ];
    for (description, code, needle) in cases {
        let response = app.post_json("/workflows", &description).await;
        assert_eq!(response.status(), 422, "{description}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{error}");
        assert!(error.to_string().contains(needle), "{needle} in {error}");
    }
    assert_eq!(app.get("/workflows/wf-0193a1b2c3d4e5f60718293a4b5c6d7e").await.status(), 404);
    assert_eq!(app.get("/workflows/nope").await.status(), 404);
}

#[tokio::test]
async fn a_task_can_start_a_workflow_and_finished_workflows_expire() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = app.enqueue("starts_workflow", json!([1, 2])).await;
    let record = app.wait_terminal(&id).await;
    let workflow = record["result"].as_str().expect("the task returned the workflow id").to_owned();
    let status = finished(&app, &workflow).await;
    assert_succeeded(&status, json!(13));
    let ttl: i64 = redis::AsyncCommands::ttl(&mut app.broker.connection(), app.broker.keys().workflow(&workflow))
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 86_400, "a finished workflow's key expires: ttl {ttl}");
}

#[tokio::test]
async fn a_workflow_whose_first_enqueue_loses_its_reply_starts_and_finishes() {
    let (app, proxy) = TestApp::spawn_behind_reply_cutter().await;
    // A first enqueue loads the script, so the one cut below runs it.
    app.enqueue("add", json!([1, 1])).await;
    // Only an enqueue on the default queue names its listing log.
    let listing = app.broker.keys().listing(&celeriac::QueueName::parse("default").unwrap());
    let status = run_losing_a_reply(&app, &proxy, listing.as_bytes(), 2).await;
    assert_succeeded(&status, json!(8));
}

/// Starts the chain `add(first, first)`, `add(4)` while the reply to the request that holds
/// `pattern` is lost, then runs it with a worker; its final status.
async fn run_losing_a_reply(app: &TestApp, proxy: &ReplyCutter, pattern: &[u8], first: i64) -> Value {
    proxy.cut_reply_to(pattern);
    let chain = json!({"chain": [{"task": "add", "args": [first, first]}, {"task": "add", "args": [4]}]});
    let id = start(app, chain).await;
    assert_eq!(proxy.cuts(), 1);
    app.start_worker(test_registry()).await;
    finished(app, &id).await
}

#[tokio::test]
async fn a_workers_reaper_finishes_a_workflow_whose_start_was_cut_short() {
    let (app, proxy) = TestApp::spawn_behind_reply_cutter().await;
    start(
        &app,
        json!({"chain": [{"task": "add", "args": [1, 1]}, {"task": "add", "args": [1]}]}),
    )
    .await;
    // Another start, through a connection of its own, stops after storing the workflow.
    let starter = celeriac::Broker::connect(&proxy.url(), &app.settings.redis.namespace, app.settings.result_ttl()).unwrap();
    let plan = Plan::compile(&Step::chain(vec![Step::task("add", json!([2, 2])), Step::task("add", json!([2]))])).unwrap();
    proxy.stall_reply_to(b"left:1");
    tokio::select! {
        started = starter.start_workflow(&plan) => panic!("the start was not cut short: {started:?}"),
        () = proxy.lost(1) => {}
    }
    let starting: Vec<String> = redis::AsyncCommands::zrange(&mut app.broker.connection(), app.broker.keys().workflows_starting(), 0, -1)
        .await
        .unwrap();
    let [cut] = starting.as_slice() else {
        panic!("one start left unfinished: {starting:?}")
    };

    // Half a minute on, a worker's reaper enqueues its first member, and it runs to the end
    // (within seconds: the reaper runs at once and every half second here).
    app.broker.clock().advance(Duration::from_secs(31));
    app.start_worker(test_registry()).await;
    assert_succeeded(&finished_within(&app, cut, Duration::from_secs(10)).await, json!(6));
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_workflow_and_rejects_reuse() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let post = |body: Value| {
        let app = &app;
        async move { app.post_json_with_key("/workflows", "monthly-7", &body).await }
    };
    let chain = json!({"chain": [{"task": "add", "args": [2, 2]}, {"task": "add", "args": [4]}]});
    let first = post(chain.clone()).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let id = first["workflow_id"].as_str().unwrap();
    assert_eq!(finished(&app, id).await["result"], 8);

    let again = post(chain).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["location"], format!("/workflows/{id}").as_str());
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (&again["workflow_id"], again["state"].as_str(), &again["tasks"]),
        (&first["workflow_id"], Some("SUCCESS"), &first["tasks"]),
        "the first workflow, as it is now"
    );
    let reused = post(json!({"chain": [{"task": "add", "args": [1, 1]}, {"task": "add", "args": [4]}]})).await;
    assert_eq!(reused.status(), 422);
    let error: Value = reused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "idempotency_key_reused", "{error}");
    let bad = app
        .post_json_with_key("/workflows", "", &json!({"task": "add", "args": [1, 1]}))
        .await;
    assert_eq!(bad.status(), 422);
    let error: Value = bad.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("Idempotency-Key"), "{error}");
}

#[tokio::test]
async fn a_workflow_whose_store_loses_its_reply_is_accepted_once() {
    let (app, proxy) = TestApp::spawn_behind_reply_cutter().await;
    start(&app, json!({"task": "add", "args": [0, 0]})).await;
    let status = run_losing_a_reply(&app, &proxy, b"left:1", 3).await;
    assert_eq!(status["result"], 10);
}
