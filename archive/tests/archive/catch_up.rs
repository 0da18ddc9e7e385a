//! Catching up: tasks that ended while no archiver ran are all archived once archivers
//! start, two of them sharing the streams, each task exactly once.

use std::sync::Arc;
use std::time::Duration;

use celeriac_archive::backlog;
use celeriac_testkit::eventually;

use crate::common::{archived_ids, archiver, endings_waiting, env, run_tasks, run_tasks_in_calls, stream_len};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_ended_while_no_archiver_ran_are_archived_once_archivers_start() {
    let env = env().await;
    // 30 finish calls of 10 tasks: 30 entries of 10 endings each.
    let ids = run_tasks_in_calls(&env.broker, 30, 10).await;
    assert_eq!((stream_len(&env.broker).await, endings_waiting(&env.broker).await), (30, 300));
    let waiting = backlog(&env.broker).await.unwrap();
    assert_eq!((waiting.len(), waiting[0].entries, waiting[0].pending), (1, 30, 0));
    let first: Vec<(String, redis::Value)> = redis::cmd("XRANGE")
        .arg(env.broker.keys().archive(&crate::common::queue()))
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut env.broker.connection())
        .await
        .unwrap();
    assert_eq!(
        waiting[0].oldest_ms,
        celeriac::broker::streams::id_ms(&first[0].0),
        "the oldest entry's time"
    );
    assert!(archived_ids(&env.pool).await.is_empty());

    let runs: Vec<_> = ["a1", "a2"]
        .into_iter()
        .map(|name| {
            let a = Arc::new(archiver(&env, name, 40, Duration::from_secs(30)));
            tokio::spawn(async move { a.run(std::future::pending()).await })
        })
        .collect();
    eventually(Duration::from_secs(20), "every task archived", || async {
        (archived_ids(&env.pool).await.len() == ids.len() && stream_len(&env.broker).await == 0).then_some(())
    })
    .await;
    assert_eq!(archived_ids(&env.pool).await, ids);
    assert!(backlog(&env.broker).await.unwrap().is_empty());
    for run in runs {
        run.abort();
    }
}

/// A batch is sized in endings, its entries taken whole: entries read beyond a full batch stay
/// this archiver's and are its next batch, so nothing read is lost or archived twice.
#[tokio::test]
async fn a_batch_takes_whole_entries_until_it_holds_its_size_and_the_rest_come_next() {
    let env = env().await;
    let single = run_tasks(&env.broker, 1).await;
    let mut ids = single.clone();
    ids.extend(run_tasks_in_calls(&env.broker, 3, 10).await);
    let a1 = archiver(&env, "a1", 5, Duration::from_secs(30));
    // The first read takes one entry (the archiver expects many endings per entry at first):
    // the one-task entry. Now it expects one ending per entry, so it reads five entries, the
    // three of ten tasks, and takes the first: a batch of 10 endings, over its size.
    assert_eq!(a1.step().await.unwrap(), 1);
    assert_eq!(archived_ids(&env.pool).await, single);
    assert_eq!(a1.step().await.unwrap(), 10);
    let waiting = backlog(&env.broker).await.unwrap();
    assert_eq!(
        (waiting[0].entries, waiting[0].pending),
        (2, 2),
        "the two entries read beyond stay a1's"
    );
    // Another archiver does not get them (not idle for 30 s); a1 takes them next, one a batch.
    let a2 = archiver(&env, "a2", 5, Duration::from_secs(30));
    assert_eq!(a2.step().await.unwrap(), 0);
    assert_eq!(a1.step().await.unwrap(), 10);
    assert_eq!(a1.step().await.unwrap(), 10);
    assert_eq!(a1.step().await.unwrap(), 0);
    assert_eq!(archived_ids(&env.pool).await, ids);
    assert_eq!(stream_len(&env.broker).await, 0);
}
