//! Catching up: tasks that ended while no archiver ran are all archived once archivers
//! start, two of them sharing the streams, each task exactly once.

use std::sync::Arc;
use std::time::Duration;

use celeriac_archive::backlog;
use celeriac_testkit::eventually;

use crate::common::{archived_ids, archiver, env, run_tasks, stream_len};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_ended_while_no_archiver_ran_are_archived_once_archivers_start() {
    let env = env().await;
    let mut ids = run_tasks(&env.broker, 150).await;
    ids.extend(run_tasks(&env.broker, 150).await);
    assert_eq!(stream_len(&env.broker).await, 300);
    let waiting = backlog(&env.broker).await.unwrap();
    assert_eq!((waiting.len(), waiting[0].entries, waiting[0].pending), (1, 300, 0));
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
