//! A remote task whose worker process is SIGKILLed in the middle of the HTTP call: the task
//! runs again, once, on another worker, as soon as that one proves the first dead (same host,
//! pid gone) or else after its lease (real `celeriac-worker` processes, a real endpoint on a
//! loopback port).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use celeriac::TaskState;
use celeriac::remote::RemoteTaskType;
use celeriac_testkit::{RedisServer, eventually};
use serde_json::json;

use crate::common::Setup;

/// An endpoint whose first call never answers (its worker is killed meanwhile) and whose
/// later calls succeed; counts the calls.
async fn endpoint() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = |State(calls): State<Arc<AtomicUsize>>| async move {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 1 {
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
        axum::Json(json!({"call": n}))
    };
    let app = Router::new().route("/run", post(handler)).with_state(Arc::clone(&calls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/run", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

#[tokio::test]
async fn a_worker_killed_mid_call_runs_the_task_again_once() {
    let setup = Setup::new(RedisServer::start());
    let (url, calls) = endpoint().await;
    let ty = RemoteTaskType {
        name: "remote_hangs_once".into(),
        queue: "default".into(),
        url,
        timeout: 300.0,
        secret: "a-secret-for-this-test".into(),
        max_answer_bytes: 1024,
        options: Default::default(),
    };
    setup.broker.put_task_type(&ty).await.unwrap();
    let mut first = setup.worker(2);
    let id = setup.enqueue("remote_hangs_once", json!({})).await;
    eventually(Duration::from_secs(60), "the first call reaches the endpoint", || async {
        (calls.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    first.kill();
    let _second = setup.worker(2);
    let done = setup.wait_state(&id, TaskState::Success, Duration::from_secs(60)).await;
    assert_eq!(done.result, Some(json!({"call": 2})));
    assert_eq!((done.deliveries, done.attempt), (2, 1), "a redelivery after a crash, not a retry");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "run again exactly once");
}
