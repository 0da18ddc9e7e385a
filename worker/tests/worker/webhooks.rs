//! Completion webhooks, end to end: tasks that name a `callback_url` run on a real
//! `celeriac-worker` process, and a real HTTP receiver on a loopback port gets one signed
//! `POST` per final state; a receiver that fails is tried again with backoff, and given up
//! after `max_attempts`; each attempt is in the task's record.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use celeriac::broker::NewTask;
use celeriac::signing::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, verify};
use celeriac::{QueueName, TaskId, TaskOptions, TaskState};
use celeriac_testkit::{RedisServer, eventually};
use serde_json::{Value, json};

use crate::common::{Setup, WorkerProcess};

const SECRET: &str = "webhook-secret-of-this-test";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    webhook_id: String,
    signature: String,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An answer that never comes (the request hangs for a minute).
const HANG: u16 = 0;

/// A receiver that answers each request with the next status of `answers` ([`HANG`]: none),
/// then `200`.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(answers: Vec<u16>) -> Self {
        type Shared = (Arc<Mutex<Vec<Received>>>, Arc<Mutex<Vec<u16>>>);
        let got = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(answers));
        let handler = |State((got, answers)): State<Shared>, headers: HeaderMap, body: Bytes| async move {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            got.lock().unwrap().push(Received {
                at: Instant::now(),
                webhook_id: header("celeriac-webhook-id"),
                signature: header(SIGNATURE_HEADER),
                body,
            });
            let status = {
                let mut answers = answers.lock().unwrap();
                if answers.is_empty() { 200 } else { answers.remove(0) }
            };
            if status == HANG {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            StatusCode::from_u16(status.max(200)).unwrap()
        };
        let app = Router::new().route("/hook", post(handler)).with_state((Arc::clone(&got), answers));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got }
    }

    fn for_task(&self, id: &TaskId) -> Vec<Received> {
        let id = id.to_string();
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.json()["task_id"] == json!(id))
            .cloned()
            .collect()
    }

    async fn wait_for(&self, id: &TaskId, n: usize) -> Vec<Received> {
        eventually(Duration::from_secs(30), &format!("{n} webhook requests for {id}"), || async {
            let got = self.for_task(id);
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

fn worker(setup: &Setup, env: &[(&str, &str)]) -> WorkerProcess {
    let mut all = vec![
        ("CELERIAC__WEBHOOKS__SECRET", SECRET),
        ("CELERIAC__WEBHOOKS__BACKOFF", "200ms"),
        ("CELERIAC__WEBHOOKS__TIMEOUT", "1s"),
    ];
    all.extend_from_slice(env);
    setup.worker_with(4, &all)
}

async fn enqueue(setup: &Setup, task: &str, args: Value, callback: Option<&str>, due_ms: Option<i64>) -> TaskId {
    let queue = QueueName::parse("default").unwrap();
    let mut new = NewTask::new(&queue, task, &args);
    new.options = TaskOptions {
        callback_url: callback.map(str::to_owned),
        max_retries: Some(0),
        ..TaskOptions::default()
    };
    new.due_ms = due_ms;
    setup.broker.enqueue(&queue, std::slice::from_ref(&new), 0, None).await.unwrap();
    new.id
}

#[tokio::test]
async fn each_final_state_is_posted_once_signed_and_logged_in_the_record() {
    let setup = Setup::new(RedisServer::start());
    let receiver = Receiver::start(vec![]).await;
    let _worker = worker(&setup, &[]);
    let url = Some(receiver.url.as_str());
    let success = enqueue(&setup, "add", json!([2, 3]), url, None).await;
    let failure = enqueue(&setup, "fail", json!({"message": "boom", "retryable": false}), url, None).await;
    let later = setup.broker.clock().now_ms() + 3_600_000;
    let revoked = enqueue(&setup, "noop", json!({}), url, Some(later)).await;
    setup.broker.revoke(&revoked, false, "not wanted").await.unwrap();
    // The same tasks without a callback hand nothing over.
    let silent = enqueue(&setup, "add", json!([1, 1]), None, None).await;
    setup.wait_state(&silent, TaskState::Success, Duration::from_secs(30)).await;
    // Nor one whose arguments (not its options) hold a `callback_url`.
    let impostor = enqueue(&setup, "noop", json!({"callback_url": receiver.url}), None, None).await;
    setup.wait_state(&impostor, TaskState::Success, Duration::from_secs(30)).await;

    for (id, state) in [(&success, "SUCCESS"), (&failure, "FAILURE"), (&revoked, "REVOKED")] {
        let got = receiver.wait_for(id, 1).await;
        let body = got[0].json();
        assert_eq!(body["state"], json!(state), "{body}");
        assert_eq!(body["attempt"], json!(1));
        assert_eq!(body["task"]["task_id"], json!(id.to_string()), "the record rides along: {body}");
        let now = chrono::Utc::now().timestamp();
        verify(SECRET.as_bytes(), &got[0].signature, &got[0].body, now, DEFAULT_TOLERANCE).expect("a valid signature");
        assert!(
            verify(b"another-secret-entirely", &got[0].signature, &got[0].body, now, DEFAULT_TOLERANCE).is_err(),
            "another secret does not verify"
        );
        assert!(got[0].webhook_id.starts_with("default:"), "{:?}", got[0].webhook_id);
        let record = eventually(Duration::from_secs(10), "the delivery is logged", || async {
            let record = setup.record(id).await;
            (!record.webhooks.is_empty()).then_some(record)
        })
        .await;
        assert_eq!(record.webhooks.len(), 1, "{:?}", record.webhooks);
        let log = &record.webhooks[0];
        assert_eq!((log.attempt, log.outcome.as_str(), log.status), (1, "delivered", Some(200)));
        assert_eq!(log.state.as_str(), state);
    }
    assert_eq!(success_result(&receiver, &success), json!(5));
    // Once each, and nothing left to deliver.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in [&success, &failure, &revoked] {
        assert_eq!(receiver.for_task(id).len(), 1, "{id} was posted once");
    }
    for quiet in [&silent, &impostor] {
        assert!(receiver.for_task(quiet).is_empty(), "{quiet} was posted");
        assert!(setup.record(quiet).await.webhooks.is_empty());
    }
    let queue = QueueName::parse("default").unwrap();
    assert_eq!(setup.broker.webhook_backlog(&queue).await.unwrap(), 0);
}

fn success_result(receiver: &Receiver, id: &TaskId) -> Value {
    receiver.for_task(id)[0].json()["task"]["result"].clone()
}

#[tokio::test]
async fn a_failing_receiver_is_tried_again_with_backoff_until_it_answers() {
    let setup = Setup::new(RedisServer::start());
    let receiver = Receiver::start(vec![500, 503]).await;
    let _worker = worker(&setup, &[]);
    let id = enqueue(&setup, "noop", json!({}), Some(&receiver.url), None).await;
    let got = receiver.wait_for(&id, 3).await;
    assert_eq!(got.len(), 3);
    let attempts: Vec<Value> = got.iter().map(|r| r.json()["attempt"].clone()).collect();
    assert_eq!(attempts, [json!(1), json!(2), json!(3)]);
    assert!(got.iter().all(|r| r.webhook_id == got[0].webhook_id), "one ending, one id");
    // backoff 200 ms, doubled, plus the timeout (1 s) each time
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(1150), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(1350), "{gaps:?}");
    let record = eventually(Duration::from_secs(10), "three attempts logged", || async {
        let record = setup.record(&id).await;
        (record.webhooks.len() == 3).then_some(record)
    })
    .await;
    let log: Vec<(u32, &str, Option<u16>)> = record.webhooks.iter().map(|d| (d.attempt, d.outcome.as_str(), d.status)).collect();
    assert_eq!(
        log,
        [(1, "failed", Some(500)), (2, "failed", Some(503)), (3, "delivered", Some(200))]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.for_task(&id).len(), 3, "nothing more once delivered");
}

#[tokio::test]
async fn a_receiver_that_never_succeeds_is_given_up_after_max_attempts() {
    let setup = Setup::new(RedisServer::start());
    let receiver = Receiver::start(vec![500; 100]).await;
    let _worker = worker(&setup, &[("CELERIAC__WEBHOOKS__MAX_ATTEMPTS", "2")]);
    let id = enqueue(&setup, "noop", json!({}), Some(&receiver.url), None).await;
    receiver.wait_for(&id, 2).await;
    let record = eventually(Duration::from_secs(10), "two attempts logged", || async {
        let record = setup.record(&id).await;
        (record.webhooks.len() == 2).then_some(record)
    })
    .await;
    let outcomes: Vec<&str> = record.webhooks.iter().map(|d| d.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "gave_up"]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receiver.for_task(&id).len(), 2, "no attempt after giving up");
    let queue = QueueName::parse("default").unwrap();
    assert_eq!(setup.broker.webhook_backlog(&queue).await.unwrap(), 0);
}

#[tokio::test]
async fn a_delivery_cut_short_by_a_killed_worker_is_made_by_another() {
    let setup = Setup::new(RedisServer::start());
    // The first request never gets its answer: its worker is killed meanwhile.
    let receiver = Receiver::start(vec![HANG]).await;
    let timeout = [("CELERIAC__WEBHOOKS__TIMEOUT", "2s")];
    let mut first = worker(&setup, &timeout);
    let id = enqueue(&setup, "noop", json!({}), Some(&receiver.url), None).await;
    receiver.wait_for(&id, 1).await;
    first.kill();
    let _second = worker(&setup, &timeout);
    let got = receiver.wait_for(&id, 2).await;
    assert_eq!(got[1].json()["attempt"], json!(2), "taken over as the next attempt");
    assert_eq!(got[1].webhook_id, got[0].webhook_id);
    let record = eventually(Duration::from_secs(10), "the delivery is logged", || async {
        let record = setup.record(&id).await;
        (!record.webhooks.is_empty()).then_some(record)
    })
    .await;
    let log: Vec<(u32, &str)> = record.webhooks.iter().map(|d| (d.attempt, d.outcome.as_str())).collect();
    assert_eq!(log, [(2, "delivered")], "the killed worker's attempt left no entry");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.for_task(&id).len(), 2);
}
