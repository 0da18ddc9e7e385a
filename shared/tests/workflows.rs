//! Workflow starts cut short (the starter died, or its request was dropped, between storing a
//! workflow and enqueuing its first members), driven through the library against a real
//! redis-server and a proxy that loses replies.

use std::time::Duration;

use celeriac::workflow::{Plan, Step};
use celeriac::{Broker, TaskId, TaskState};
use celeriac_testkit::{RedisServer, ReplyCutter, unique_namespace};
use serde_json::json;

const TTL: Duration = Duration::from_secs(3600);

/// A chain of two `add`s: its second node waits for the first, so its plan has a `left:1`.
fn chain(first: i64) -> Plan {
    Plan::compile(&Step::chain(vec![
        Step::task("add", json!([first, 1])),
        Step::task("add", json!([2])),
    ]))
    .unwrap()
}

/// Starts `plan` through a fresh connection via `proxy`, and drops the start as its process
/// would stop: after half a second, while it waits for a reply the proxy stalls.
async fn start_cut_short(proxy: &ReplyCutter, namespace: &str, plan: &Plan) {
    let broker = Broker::connect(&proxy.url(), namespace, TTL).unwrap();
    let started = tokio::time::timeout(Duration::from_millis(500), broker.start_workflow(plan)).await;
    assert!(started.is_err(), "the start was cut short: {started:?}");
}

#[tokio::test]
async fn a_workflow_whose_start_was_cut_short_is_revoked_and_a_started_one_is_left_alone() {
    let redis = RedisServer::start();
    let proxy = ReplyCutter::start(redis.port());
    let namespace = unique_namespace();
    let broker = Broker::connect(&redis.url(), &namespace, TTL).unwrap();
    // Started in full (this also loads the scripts): never revoked, however old its start.
    let started = broker.start_workflow(&chain(1)).await.unwrap();

    // Cut after the workflow was stored, before any member was: stalled on its creation.
    proxy.stall_reply_to(b"left:1");
    start_cut_short(&proxy, &namespace, &chain(2)).await;
    // Cut after its first member was enqueued, before the start was marked complete.
    proxy.stall_reply_to(broker.keys().listing(&celeriac::QueueName::parse("default").unwrap()).as_bytes());
    start_cut_short(&proxy, &namespace, &chain(3)).await;
    assert_eq!(proxy.cuts(), 2);

    assert_eq!(
        broker.revoke_abandoned_workflows(Duration::from_secs(60)).await.unwrap(),
        Vec::<String>::new(),
        "too young"
    );
    let mut revoked = broker.revoke_abandoned_workflows(Duration::ZERO).await.unwrap();
    revoked.sort();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert!(!revoked.contains(&started.workflow_id));
    for id in &revoked {
        let status = broker.workflow_status(id).await.unwrap().expect("stored");
        assert_eq!(status.state, "REVOKED", "{id}");
        for member in &status.members {
            let task = broker.get(&TaskId::parse(&member.task_id).unwrap()).await.unwrap();
            let state = task.map(|t| t.state);
            assert!(
                matches!(state, None | Some(TaskState::Revoked)),
                "a member of an abandoned start never runs: {state:?}"
            );
        }
    }
    // The one whose member was enqueued: that member is revoked, not left to run.
    let enqueued = revoked.last().unwrap();
    let first = &broker.workflow_status(enqueued).await.unwrap().unwrap().members[0];
    let record = broker
        .get(&TaskId::parse(&first.task_id).unwrap())
        .await
        .unwrap()
        .expect("enqueued before the cut");
    assert_eq!(record.state, TaskState::Revoked);

    assert_eq!(
        broker.workflow_status(&started.workflow_id).await.unwrap().unwrap().state,
        "RUNNING"
    );
    assert_eq!(
        broker.revoke_abandoned_workflows(Duration::ZERO).await.unwrap(),
        Vec::<String>::new(),
        "each once"
    );
}
