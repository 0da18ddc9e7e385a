//! Faults: an archiver that dies between its insert and its acknowledgement (or before its
//! insert), one aborted at any point of its run, and PostgreSQL restarted while archiving:
//! no task is lost and none archived twice (ids compared, and one row per id).

use std::sync::Arc;
use std::time::Duration;

use celeriac_archive::backlog;
use celeriac_testkit::eventually;

use crate::common::{archived_ids, archiver, env, run_tasks, run_tasks_in_calls, stream_len};

#[tokio::test]
async fn an_archiver_killed_between_insert_and_ack_loses_and_duplicates_nothing() {
    let env = env().await;
    let ids = run_tasks_in_calls(&env.broker, 10, 10).await; // 10 entries of 10 endings
    let queue = crate::common::queue();
    let stored = {
        let dying = archiver(&env, "dying", 30, Duration::from_secs(30));
        let stored = dying.take(&queue).await.unwrap();
        assert_eq!(dying.store(&stored).await.unwrap(), stored.rows.len());
        // dies here: its insert committed, its entries never acknowledged
        let taken = dying.take(&queue).await.unwrap();
        assert_eq!(taken.ids, stored.ids, "its own pending entries come first");
        stored
    };
    let held = {
        let other = archiver(&env, "dying-too", 30, Duration::from_secs(30));
        let taken = other.take(&queue).await.unwrap();
        assert!(!taken.ids.is_empty() && taken.ids.iter().all(|id| !stored.ids.contains(id)));
        taken.ids.len()
        // dies before its insert
    };
    assert_eq!(archived_ids(&env.pool).await.len(), stored.rows.len());
    let left = backlog(&env.broker).await.unwrap();
    assert_eq!((left[0].entries, left[0].pending), (10, (stored.ids.len() + held) as u64));

    // A survivor claims what the dead left (idle for over 0 ms here) and archives the rest.
    drain_with_survivor(&env, 30).await;
    assert_eq!(archived_ids(&env.pool).await, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archiver_aborted_mid_run_loses_and_duplicates_nothing() {
    let env = env().await;
    // 200 entries of 10 endings, archived 10 at a time: 200 batches, far more than the
    // archiver can commit between two looks of the poll below, so the abort lands mid-run
    // (with 40 entries it once finished all of them first, on a loaded CI machine).
    let ids = run_tasks_in_calls(&env.broker, 200, 10).await;
    let a = Arc::new(archiver(&env, "aborted", 10, Duration::from_secs(30)));
    let run = tokio::spawn(async move { a.run(std::future::pending()).await });
    eventually(Duration::from_secs(10), "the first archiver has begun", || async {
        (!archived_ids(&env.pool).await.is_empty()).then_some(())
    })
    .await;
    run.abort();
    let _ = run.await;
    let archived = archived_ids(&env.pool).await.len();
    assert!(archived < ids.len(), "aborted mid-run ({archived} archived)");

    drain_with_survivor(&env, 200).await;
    assert_eq!(archived_ids(&env.pool).await, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_loses_nothing() {
    let mut env = env().await;
    let a = Arc::new(archiver(&env, "a1", 25, Duration::from_secs(30)));
    let run = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.run(std::future::pending()).await }
    });
    let mut ids = run_tasks(&env.broker, 50).await;
    eventually(Duration::from_secs(10), "the first tasks archived", || async {
        (archived_ids(&env.pool).await == ids).then_some(())
    })
    .await;

    // The servers' programs are blocking calls: off the runtime's threads.
    tokio::task::block_in_place(|| env.pg.stop());
    ids.extend(run_tasks(&env.broker, 100).await);
    // The archiver read entries it could not commit: they wait, unacknowledged.
    eventually(Duration::from_secs(10), "the archiver tried while PostgreSQL was down", || async {
        backlog(&env.broker)
            .await
            .unwrap()
            .first()
            .is_some_and(|b| b.pending > 0)
            .then_some(())
    })
    .await;
    tokio::task::block_in_place(|| env.pg.restart());
    eventually(Duration::from_secs(20), "every task archived after the restart", || async {
        (stream_len(&env.broker).await == 0).then_some(())
    })
    .await;
    assert_eq!(archived_ids(&env.pool).await, ids);
    run.abort();
}

/// `celeriac-archiver` as a child process on the test's servers.
fn archiver_process(env: &crate::common::Env, claim_idle_ms: u64) -> std::process::Child {
    let config = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_celeriac-archiver"))
        .env_clear()
        .env("CELERIAC_CONFIG_DIR", config.path())
        .env("REDIS_URL", format!("redis://127.0.0.1:{}", env.redis.port()))
        .env("CELERIAC__REDIS__NAMESPACE", env.broker.keys().namespace())
        .env("CELERIAC_ARCHIVE_DATABASE_URL", &env.database_url)
        .env("CELERIAC_ARCHIVE_BATCH", "10")
        .env("CELERIAC_ARCHIVE_POLL_MS", "10")
        .env("CELERIAC_ARCHIVE_CLAIM_IDLE_MS", claim_idle_ms.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archiver_process_sigkilled_mid_run_loses_and_duplicates_nothing() {
    let env = env().await;
    let ids = run_tasks_in_calls(&env.broker, 40, 10).await; // 40 entries of 10 endings
    let mut first = archiver_process(&env, 30_000);
    eventually(Duration::from_secs(20), "the first archiver process has begun", || async {
        (!archived_ids(&env.pool).await.is_empty()).then_some(())
    })
    .await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let archived = archived_ids(&env.pool).await.len();
    assert!(archived < ids.len(), "killed mid-run ({archived} archived)");

    let mut second = archiver_process(&env, 0);
    eventually(Duration::from_secs(30), "the second archiver process archived the rest", || async {
        (stream_len(&env.broker).await == 0).then_some(())
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(archived_ids(&env.pool).await, ids);
}

/// A fresh archiver that claims at once whatever others left (idle for over 0 ms) and takes
/// batches of `batch` until the stream is empty (at most 20 steps).
async fn drain_with_survivor(env: &crate::common::Env, batch: usize) {
    let survivor = archiver(env, "survivor", batch, Duration::ZERO);
    for _ in 0..20 {
        if stream_len(&env.broker).await == 0 {
            break;
        }
        survivor.step().await.unwrap();
    }
    assert_eq!(stream_len(&env.broker).await, 0);
}
