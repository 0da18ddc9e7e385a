//! The hand-over: every kind of ending (success, failure and dead letter, revoked while
//! queued or while running, revoked while running on a worker that died, purged, expired) reaches the archive with what its record held,
//! even when the record is gone from Redis by the time the archiver runs; with the archive
//! off, the scripts hand nothing over.

use std::collections::BTreeMap;
use std::time::Duration;

use celeriac::broker::{NewTask, Outcome, Started, Verdict, new_claim_token};
use celeriac::{Broker, TaskState};
use celeriac_testkit::{RedisServer, eventually, unique_namespace};
use serde_json::{Value, json};

use crate::common::{TTL, archived_ids, archiver, endings_waiting, env, queue, run_tasks, stream_len};

#[tokio::test]
async fn every_kind_of_ending_is_archived_with_its_record_even_after_the_record_expired() {
    let env = env().await;
    let b = &env.broker;
    let ran = run_tasks(b, 4).await;

    // revoked while queued
    let queued = NewTask::new(&queue(), "later", &json!({"k": "queued"}));
    b.enqueue(&queue(), std::slice::from_ref(&queued), 0, None).await.unwrap();
    b.revoke(&queued.id, false, "not needed").await.unwrap();

    // revoked while running: whatever the run reports is stored as REVOKED
    let running = NewTask::new(&queue(), "long", &json!({"k": "running"}));
    b.enqueue(&queue(), std::slice::from_ref(&running), 0, None).await.unwrap();
    let ids = match b
        .claim(&queue(), "w2", 1, Duration::from_secs(30), &new_claim_token())
        .await
        .unwrap()
    {
        celeriac::broker::Claim::Ids(ids) => ids,
        other => panic!("{other:?}"),
    };
    let Some(Started::Run(d)) = b.start(&queue(), "w2", &ids).await.unwrap().pop() else {
        panic!("not started")
    };
    b.revoke(&running.id, true, "stop it").await.unwrap();
    let outcome = Outcome {
        id: d.id.clone(),
        delivery: d.delivery,
        verdict: Verdict::Success("1".into()),
    };
    b.finish(&queue(), "w2", &[outcome]).await.unwrap();

    // revoked while running, and its worker died: the reaper settles it (requeue.lua)
    let orphan = NewTask::new(&queue(), "long", &json!({"k": "orphan"}));
    b.enqueue(&queue(), std::slice::from_ref(&orphan), 0, None).await.unwrap();
    let ids = match b
        .claim(&queue(), "w3", 1, Duration::from_secs(30), &new_claim_token())
        .await
        .unwrap()
    {
        celeriac::broker::Claim::Ids(ids) => ids,
        other => panic!("{other:?}"),
    };
    assert!(matches!(b.start(&queue(), "w3", &ids).await.unwrap()[..], [Started::Run(_)]));
    b.revoke(&orphan.id, true, "stop it").await.unwrap();
    let _: () = redis::cmd("ZADD")
        .arg(b.keys().leases(&queue()))
        .arg(0)
        .arg("w3")
        .query_async(&mut b.connection())
        .await
        .unwrap();
    assert_eq!(b.recover_expired(&queue(), "w3").await.unwrap(), Some(0));

    // purged
    let purged: Vec<NewTask> = (0..2).map(|i| NewTask::new(&queue(), "bulk", &json!({"k": i}))).collect();
    b.enqueue(&queue(), &purged, 0, None).await.unwrap();
    assert_eq!(b.purge(&queue()).await.unwrap(), 2);

    // expired while waiting for its due time (promote)
    let mut expiring = NewTask::new(&queue(), "stale", &json!({"k": "expired"}));
    // Due and expiring in 300 ms: far enough that the enqueue, read by its own clock, still
    // finds it in the future and schedules it (1 ms was sometimes past on a loaded machine,
    // and the task went straight to pending, which promote never sees).
    let now = b.clock().now_ms();
    expiring.due_ms = Some(now + 300);
    expiring.expires_ms = Some(now + 300);
    b.enqueue(&queue(), std::slice::from_ref(&expiring), 0, None).await.unwrap();
    eventually(Duration::from_secs(5), "the expired task is revoked", || async {
        b.promote_due(&queue(), 10).await.unwrap();
        (b.get(&expiring.id).await.unwrap().unwrap().state == TaskState::Revoked).then_some(())
    })
    .await;

    assert_eq!(endings_waiting(b).await, 4 + 1 + 1 + 1 + 2 + 1, "every ending handed over");
    assert_eq!(
        stream_len(b).await,
        6,
        "one entry per script call: 4 finished in one, 2 purged in one"
    );
    // Every record expires before the archiver runs: the entries alone must do.
    let mut all = ran.clone();
    for id in [&queued.id, &running.id, &orphan.id, &expiring.id]
        .into_iter()
        .chain(purged.iter().map(|t| &t.id))
    {
        all.insert(id.to_string());
    }
    for id in &all {
        let id = celeriac::TaskId::parse(id).unwrap();
        let _: () = redis::cmd("DEL")
            .arg(b.keys().task(&id))
            .query_async(&mut b.connection())
            .await
            .unwrap();
    }

    let archiver = archiver(&env, "a1", 100, Duration::from_secs(30));
    assert_eq!(archiver.step().await.unwrap(), all.len());
    assert_eq!(archived_ids(&env.pool).await, all);
    assert_eq!(stream_len(b).await, 0, "archived entries leave the stream");

    type Row = (
        String,
        String,
        Value,
        Option<Value>,
        Option<Value>,
        i32,
        i32,
        Option<String>,
        bool,
        bool,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT task_id, state, args, result, error, attempts, deliveries, worker, started_at IS NOT NULL, \
         created_at IS NOT NULL, run_time_ms FROM celeriac_tasks",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let rows: BTreeMap<String, Row> = rows.into_iter().map(|r| (r.0.clone(), r)).collect();
    for id in &ran {
        let (_, state, args, result, error, attempts, deliveries, worker, started, created, run_ms) = &rows[id];
        let n = args["n"].as_u64().unwrap();
        assert_eq!(
            (attempts, deliveries, worker.as_deref(), started, created),
            (&1, &1, Some("w1"), &true, &true)
        );
        assert!(run_ms.is_some_and(|ms| ms >= 0), "{run_ms:?}");
        if n.is_multiple_of(2) {
            assert_eq!((state.as_str(), result, error), ("SUCCESS", &Some(json!(n * 2)), &None));
        } else {
            assert_eq!(state, "FAILURE");
            assert_eq!(error.as_ref().unwrap()["kind"], "Odd");
            assert_eq!(error.as_ref().unwrap()["message"], format!("odd {n}"));
        }
    }
    let kind = |id: &celeriac::TaskId| {
        let r = &rows[&id.to_string()];
        assert_eq!(r.1, "REVOKED", "{id}");
        r.4.as_ref().unwrap()["kind"].as_str().unwrap().to_owned()
    };
    assert_eq!(kind(&queued.id), "Revoked");
    assert_eq!(kind(&running.id), "Revoked");
    assert_eq!(kind(&orphan.id), "Revoked");
    assert_eq!(kind(&expiring.id), "Expired");
    for t in &purged {
        assert_eq!(kind(&t.id), "Purged");
    }
    assert_eq!(rows[&running.id.to_string()].7.as_deref(), Some("w2"));
    assert_eq!(rows[&queued.id.to_string()].2, json!({"k": "queued"}));
}

#[tokio::test]
async fn with_the_archive_off_the_scripts_hand_nothing_over() {
    let redis = RedisServer::start();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), TTL).unwrap();
    run_tasks(&broker, 3).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(broker.keys().archive(&queue()))
        .query_async(&mut broker.connection())
        .await
        .unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn a_task_the_database_refuses_does_not_hold_back_the_others() {
    let env = env().await;
    let b = &env.broker;
    // jsonb cannot hold the NUL character: PostgreSQL refuses this task's arguments.
    let bad = NewTask::new(&queue(), "odd", &json!({"s": "a\u{0}b"}));
    b.enqueue(&queue(), std::slice::from_ref(&bad), 0, None).await.unwrap();
    b.revoke(&bad.id, false, "refused by the archive").await.unwrap();
    let good = run_tasks(b, 3).await;
    assert_eq!((stream_len(b).await, endings_waiting(b).await), (2, 4));

    let archiver = archiver(&env, "a1", 100, Duration::from_secs(30));
    assert_eq!(archiver.step().await.unwrap(), 3);
    assert_eq!(archived_ids(&env.pool).await, good);
    assert_eq!(stream_len(b).await, 0, "the refused entry does not stay to block the stream");
}

#[tokio::test]
async fn a_task_that_ends_twice_in_one_batch_is_one_row_with_its_latest_ending() {
    let env = env().await;
    let b = &env.broker;
    let ids = run_tasks(b, 2).await; // the second fails for good (dead-lettered)
    let mut failed = None;
    for id in &ids {
        let id = celeriac::TaskId::parse(id).unwrap();
        if b.get(&id).await.unwrap().unwrap().state == TaskState::Failure {
            failed = Some(id);
        }
    }
    let failed = failed.expect("one task failed");
    b.retry(&failed).await.unwrap();
    let outcomes = crate::drive::claimed_outcomes(b, &queue(), "w1", 1, |_| Verdict::Success("7".into())).await;
    b.finish(&queue(), "w1", &outcomes).await.unwrap();
    assert_eq!(endings_waiting(b).await, 3, "the retried task's two endings wait side by side");

    // One batch takes all three entries: the statement may not update a row twice.
    let archiver = archiver(&env, "a1", 100, Duration::from_secs(30));
    assert_eq!(archiver.step().await.unwrap(), 2);
    assert_eq!(archived_ids(&env.pool).await, ids);
    let (state, result): (String, Option<Value>) = sqlx::query_as("SELECT state, result FROM celeriac_tasks WHERE task_id = $1")
        .bind(failed.to_string())
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!((state.as_str(), result), ("SUCCESS", Some(json!(7))));
    assert_eq!(stream_len(b).await, 0);
}

#[tokio::test]
async fn a_call_that_ends_more_than_256_tasks_hands_them_over_in_entries_of_at_most_256() {
    let env = env().await;
    let b = &env.broker;
    let ids = run_tasks(b, 300).await; // one finish call
    assert_eq!((stream_len(b).await, endings_waiting(b).await), (2, 300));
    let archiver = archiver(&env, "a1", 1000, Duration::from_secs(30));
    assert_eq!(archiver.step().await.unwrap(), 300);
    assert_eq!(archived_ids(&env.pool).await, ids);
    assert_eq!(stream_len(b).await, 0);
}
