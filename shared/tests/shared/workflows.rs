//! Workflow starts cut short (the starter died, or its request was dropped, between storing a
//! workflow and enqueuing its first members), driven through the library against a real
//! redis-server and a proxy that loses replies (one node, even under `CELERIAC_TEST_REDIS=cluster`:
//! the proxy stands before a single port); and starts under an `Idempotency-Key`.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use celeriac::broker::{Idempotency, WorkflowOutcome, WorkflowStatus};
use celeriac::workflow::{Plan, Step};
use celeriac::{Broker, BrokerError, QueueName, TaskId};
use celeriac_testkit::ReplyCutter;

use redis::AsyncCommands;
use serde_json::json;

use crate::common::{TTL, broker_through, redis_behind_cutter};

/// A chain of two `add`s: its second node waits for the first, so its plan has a `left:1`.
fn chain(first: i64) -> Plan {
    Plan::compile(&Step::chain(vec![
        Step::task("add", json!([first, 1])),
        Step::task("add", json!([2])),
    ]))
    .unwrap()
}

async fn starting(broker: &Broker) -> BTreeSet<String> {
    broker.connection().zrange(broker.keys().workflows_starting(), 0, -1).await.unwrap()
}

/// Runs `start` on a fresh connection through `proxy`, armed to stall on `pattern`, and drops
/// it as its process would stop, once the stalled request ran.
async fn stall<T: std::fmt::Debug, F: Future<Output = Result<T, BrokerError>>>(
    broker: &Broker,
    proxy: &ReplyCutter,
    pattern: &[u8],
    start: impl FnOnce(Broker) -> F,
) {
    let starter = broker_through(proxy, broker);
    proxy.stall_reply_to(pattern);
    tokio::select! {
        started = start(starter) => panic!("the start was not cut short: {started:?}"),
        () = proxy.lost(proxy.cuts() + 1) => {}
    }
}

/// Starts `plan`, cut short by a stall on `pattern` (see [`stall`]). Returns the id of the
/// workflow it began.
async fn start_cut_short(broker: &Broker, proxy: &ReplyCutter, pattern: &[u8], plan: &Plan) -> String {
    let before = starting(broker).await;
    stall(broker, proxy, pattern, |starter| async move { starter.start_workflow(plan).await }).await;
    let after = starting(broker).await;
    let mut new = after.difference(&before);
    let id = new.next().expect("the start was marked").clone();
    assert_eq!(new.next(), None);
    id
}

/// [`start_cut_short`] for a start under an idempotency key.
async fn keyed_start_cut_short(broker: &Broker, proxy: &ReplyCutter, pattern: &[u8], plan: &Plan, idempotency: &Idempotency) {
    stall(broker, proxy, pattern, |starter| async move {
        starter.start_workflow_with_key(plan, idempotency).await
    })
    .await;
}

fn key(key: &str, fingerprint: &str) -> Idempotency {
    Idempotency {
        key: key.into(),
        fingerprint: fingerprint.into(),
        // Longer than the results' TTL: a workflow's claim must not outlive its workflow.
        ttl_secs: 2 * TTL.as_secs(),
    }
}

/// The started workflow's id and whether it was a repeat; panics on a reused key.
fn accepted(outcome: WorkflowOutcome) -> (String, bool) {
    match outcome {
        WorkflowOutcome::Accepted { started, replayed, .. } => (started.workflow_id, replayed),
        other => panic!("not accepted: {other:?}"),
    }
}

/// The id suffixes queued on `default`, sorted.
async fn pending_suffixes(broker: &Broker) -> Vec<String> {
    let default = QueueName::parse("default").unwrap();
    let mut pending: Vec<String> = broker.connection().lrange(broker.keys().pending(&default), 0, -1).await.unwrap();
    pending.sort();
    pending
}

/// The first members' id suffixes of `workflows`, sorted: what the queue holds when each was
/// enqueued once.
async fn first_member_suffixes(broker: &Broker, workflows: &[&String]) -> Vec<String> {
    let mut suffixes = Vec::new();
    for id in workflows {
        let status = broker.workflow_status(id).await.unwrap().unwrap();
        suffixes.push(first_member_id(&status).suffix().to_owned());
    }
    suffixes.sort();
    suffixes
}

fn first_member_id(status: &WorkflowStatus) -> TaskId {
    TaskId::parse(&status.members[0].task_id).unwrap()
}

/// The first member's record of workflow `id`, if it was enqueued.
async fn first_member(broker: &Broker, id: &str) -> Option<celeriac::TaskRecord> {
    let status = broker.workflow_status(id).await.unwrap().expect("stored");
    broker.get(&first_member_id(&status)).await.unwrap()
}

#[tokio::test]
async fn a_workflow_start_cut_short_is_finished_by_a_sweep_and_its_members_are_stored_once() {
    let (_redis, proxy, broker) = redis_behind_cutter();
    let default = QueueName::parse("default").unwrap();
    // Started in full (this also loads the scripts): nothing left to finish.
    let whole = broker.start_workflow(&chain(1)).await.unwrap();

    let marked = broker.keys().workflows_starting();
    let unstored = start_cut_short(&broker, &proxy, marked.as_bytes(), &chain(2)).await;
    let membership = start_cut_short(&broker, &proxy, b"left:1", &chain(3)).await;
    let listing = broker.keys().listing(&default);
    let unmarked = start_cut_short(&broker, &proxy, listing.as_bytes(), &chain(4)).await;
    let revoked = start_cut_short(&broker, &proxy, b"left:1", &chain(5)).await;
    assert_eq!(proxy.cuts(), 4);
    assert!(
        broker.workflow_status(&unstored).await.unwrap().is_none(),
        "cut before it was stored"
    );
    assert!(first_member(&broker, &membership).await.is_none(), "cut before its members were");
    assert!(
        first_member(&broker, &unmarked).await.is_some(),
        "cut after its first member was enqueued"
    );
    broker.revoke_workflow(&revoked).await.unwrap();
    // A start whose stored plan is broken can never be finished: it must not hold up the rest.
    let broken = "wf-00000000000000000000000000000000";
    let _: () = broker
        .connection()
        .hset_multiple(broker.keys().workflow(broken), &[("s", "RUNNING"), ("plan", "{")])
        .await
        .unwrap();
    let _: () = broker
        .connection()
        .zadd(broker.keys().workflows_starting(), broken, 0)
        .await
        .unwrap();

    assert_eq!(
        broker.finish_abandoned_starts(Duration::from_secs(60)).await.unwrap(),
        Vec::<String>::new(),
        "too young"
    );
    let mut finished = broker.finish_abandoned_starts(Duration::ZERO).await.unwrap();
    finished.sort();
    assert_eq!(finished, vec![membership.clone(), unmarked.clone()]);
    assert!(starting(&broker).await.is_empty(), "every start is settled");
    assert_eq!(broker.finish_abandoned_starts(Duration::ZERO).await.unwrap(), Vec::<String>::new());

    assert!(
        first_member(&broker, &revoked).await.is_none(),
        "a workflow revoked meanwhile stays so"
    );
    // Each first member is queued exactly once, the unmarked one's too (enqueued twice).
    let queued = [&whole.workflow_id, &membership, &unmarked];
    for id in queued {
        assert_eq!(broker.workflow_status(id).await.unwrap().unwrap().state, "RUNNING");
    }
    assert_eq!(pending_suffixes(&broker).await, first_member_suffixes(&broker, &queued).await);
}

#[tokio::test]
async fn a_repeat_under_the_same_key_gets_the_first_workflow_and_completes_its_start() {
    let (_redis, proxy, broker) = redis_behind_cutter();

    // A repeat gets the first workflow; the same key for another request starts nothing.
    let (first, replayed) = accepted(broker.start_workflow_with_key(&chain(1), &key("k1", "a")).await.unwrap());
    assert!(!replayed);
    let (again, replayed) = accepted(broker.start_workflow_with_key(&chain(1), &key("k1", "a")).await.unwrap());
    assert_eq!((again.as_str(), replayed), (first.as_str(), true));
    match broker.start_workflow_with_key(&chain(9), &key("k1", "b")).await.unwrap() {
        WorkflowOutcome::KeyReused { workflow_id } => assert_eq!(workflow_id, first),
        other => panic!("a reused key started something: {other:?}"),
    }
    assert_eq!(pending_suffixes(&broker).await.len(), 1, "one workflow's first member");
    let claim_ttl: i64 = broker.connection().ttl(broker.keys().workflow_idempotency("k1")).await.unwrap();
    assert!(
        claim_ttl > 0 && claim_ttl as u64 <= TTL.as_secs(),
        "the claim lives no longer than a result: {claim_ttl} s"
    );

    // A start cut right after claiming its key (its process stopped): the repeat stores and
    // starts the workflow the key names.
    let claim = broker.keys().workflow_idempotency("k2");
    keyed_start_cut_short(&broker, &proxy, claim.as_bytes(), &chain(2), &key("k2", "a")).await;
    let claimed: String = broker.connection().get(&claim).await.unwrap();
    let (cut, replayed) = accepted(broker.start_workflow_with_key(&chain(2), &key("k2", "a")).await.unwrap());
    assert_eq!((claimed.split(' ').next(), replayed), (Some(cut.as_str()), true));
    assert!(first_member(&broker, &cut).await.is_some(), "the repeat enqueued its first member");

    // A start cut after storing the workflow: the repeat enqueues its first member.
    keyed_start_cut_short(&broker, &proxy, b"left:1", &chain(3), &key("k3", "a")).await;
    let (stored, _) = accepted(broker.start_workflow_with_key(&chain(3), &key("k3", "a")).await.unwrap());
    assert!(first_member(&broker, &stored).await.is_some());
    assert!(starting(&broker).await.is_empty(), "both starts are complete");

    assert_eq!(
        pending_suffixes(&broker).await,
        first_member_suffixes(&broker, &[&first, &cut, &stored]).await,
        "each first member queued once"
    );
}

#[tokio::test]
async fn a_workflow_whose_store_or_key_claim_loses_its_answer_is_asked_again_and_started_once() {
    let (_redis, proxy, direct) = redis_behind_cutter();
    let broker = broker_through(&proxy, &direct);
    broker.start_workflow(&chain(1)).await.unwrap();
    proxy.cut_reply_to(b"left:1");
    let started = broker.start_workflow(&chain(2)).await.unwrap();
    assert_eq!(proxy.cuts(), 1);
    assert!(first_member(&broker, &started.workflow_id).await.is_some());
    assert!(starting(&broker).await.is_empty());
    assert_eq!(pending_suffixes(&broker).await.len(), 2);

    // A lost answer to a key's claim: the claim asked again is found to be this start's own.
    let claim = broker.keys().workflow_idempotency("lost");
    proxy.cut_reply_to(claim.as_bytes());
    let (id, replayed) = accepted(broker.start_workflow_with_key(&chain(3), &key("lost", "a")).await.unwrap());
    assert_eq!(proxy.cuts(), 2);
    assert!(!replayed, "the first start under its key, not a repeat");
    assert!(first_member(&broker, &id).await.is_some());
    assert_eq!(pending_suffixes(&broker).await.len(), 3);
}

#[tokio::test]
async fn a_start_overtaken_by_its_repeat_answers_the_same_workflow() {
    let (_redis, proxy, broker) = redis_behind_cutter();
    broker.start_workflow(&chain(0)).await.unwrap();

    // A first request claims its key, then pauses before storing its workflow...
    let first = broker_through(&proxy, &broker);
    proxy.hold_request(broker.keys().workflows_starting().as_bytes());
    let first = tokio::spawn(async move { first.start_workflow_with_key(&chain(1), &key("double-click", "a")).await });
    proxy.holding().await;
    // ...while its repeat (a double click) stores and starts it.
    let (repeat, replayed) = accepted(broker.start_workflow_with_key(&chain(1), &key("double-click", "a")).await.unwrap());
    assert!(replayed);
    proxy.release();
    let (original, replayed) = accepted(first.await.unwrap().expect("the overtaken start is answered"));
    assert_eq!((original, replayed), (repeat, false), "both name the one workflow");
    assert_eq!(pending_suffixes(&broker).await.len(), 2, "each first member once");
    assert!(starting(&broker).await.is_empty());
}
