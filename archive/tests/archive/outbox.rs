//! The outbox: `celeriac_enqueue()` inside the application's transaction returns the task id
//! at once; a committed transaction's task reaches Redis once, under that id (woken by NOTIFY,
//! not the slow poll); a rolled-back one never; a relay that dies between sending and deleting
//! does not enqueue twice.

use std::time::Duration;

use celeriac::catalog::Catalog;
use celeriac::settings::TaskSettings;
use celeriac::{QueueName, TaskId, TaskOptions, TaskSpec, TaskState};
use celeriac_archive::Relay;
use celeriac_archive::relay::Sent;
use tokio_util::sync::CancellationToken;

use crate::common::{Env, env, queue};

async fn relay(env: &Env) -> Relay {
    let spec = TaskSpec {
        name: "double".into(),
        queue: queue(),
        options: TaskOptions::default(),
    };
    env.broker.register_tasks(&[spec]).await.unwrap();
    let mut relay = Relay::new(env.broker.clone(), env.pool.clone(), Catalog::new(&TaskSettings::default()));
    relay.poll = Duration::from_secs(600); // only NOTIFY can wake it within a test
    relay
}

async fn pending(env: &Env) -> u64 {
    let stats = env.broker.queue_stats().await.unwrap();
    stats.iter().find(|s| s.queue == "default").map_or(0, |s| s.pending)
}

async fn outbox_rows(env: &Env) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM celeriac_outbox")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_committed_enqueue_runs_once_under_its_id_and_a_rolled_back_one_never() {
    let env = env().await;
    let relay = relay(&env).await;
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop.cancelled_owned()).await }
    });
    // Give the relay its first (empty) pass and its LISTEN.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut tx = env.pool.begin().await.unwrap();
    let rolled_back: String = sqlx::query_scalar("SELECT celeriac_enqueue('double', '{\"n\": 1}'::jsonb)")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let mut tx = env.pool.begin().await.unwrap();
    let committed: String = sqlx::query_scalar(
        "SELECT celeriac_enqueue('double', '{\"n\": 2}'::jsonb, call_options => '{\"tags\": {\"user_id\": \"7\"}}'::jsonb)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let id = TaskId::parse(&committed).expect("a task id at once");
    assert_eq!(id.queue(), &QueueName::parse("default").unwrap());
    assert!(env.broker.get(&id).await.unwrap().is_none(), "nothing in Redis before the commit");
    tx.commit().await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        if let Some(record) = env.broker.get(&id).await.unwrap() {
            break record;
        }
        assert!(tokio::time::Instant::now() < deadline, "the committed task never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record.state, TaskState::Pending);
    assert_eq!(record.args, serde_json::json!({"n": 2}));
    assert_eq!(record.options.tags.unwrap()["user_id"], "7");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while outbox_rows(&env).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the row was never deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pending(&env).await, 1, "the committed task once, the rolled-back one never");
    assert!(env.broker.get(&TaskId::parse(&rolled_back).unwrap()).await.unwrap().is_none());
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn a_relay_killed_between_sending_and_deleting_does_not_enqueue_twice() {
    let env = env().await;
    let relay = relay(&env).await;
    let id: String = sqlx::query_scalar("SELECT celeriac_enqueue('double', '{\"n\": 3}'::jsonb)")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    // The first relay sends and dies before its DELETE.
    let rows = relay.take().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(relay.send(&rows[0]).await.unwrap(), Sent::Queued);
    drop(relay);
    assert_eq!(outbox_rows(&env).await, 1, "the row survived the dead relay");

    // The next relay sends it again: refused as existing, then deleted.
    let next = self::relay(&env).await;
    assert_eq!(next.send(&next.take().await.unwrap()[0]).await.unwrap(), Sent::AlreadyQueued);
    assert_eq!(next.step().await.unwrap(), 1);
    assert_eq!(outbox_rows(&env).await, 0);
    assert_eq!(pending(&env).await, 1, "one task in the queue");
    assert!(env.broker.get(&TaskId::parse(&id).unwrap()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_row_that_can_never_be_a_task_stays_with_its_error() {
    let env = env().await;
    let relay = relay(&env).await;
    sqlx::query("SELECT celeriac_enqueue('double', '[]'::jsonb, call_options => '{\"max_retries\": 5000}'::jsonb)")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(relay.step().await.unwrap(), 0);
    let error: Option<String> = sqlx::query_scalar("SELECT error FROM celeriac_outbox")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(error.is_some_and(|e| e.contains("max_retries")));
    assert_eq!(relay.step().await.unwrap(), 0, "not tried again");
}

/// The Rust example (`archive/examples/outbox.rs`, built by `cargo test` beside this suite),
/// run as a user would: its user row and its welcome e-mail commit together, and the relay
/// puts the e-mail in Redis under the id the example printed.
#[tokio::test]
async fn the_rust_example_commits_its_user_and_queues_its_welcome_email() {
    let env = env().await;
    let spec = TaskSpec {
        name: "send_email".into(),
        queue: queue(),
        options: TaskOptions::default(),
    };
    env.broker.register_tasks(&[spec]).await.unwrap();
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("outbox"))
        .unwrap();
    let out = std::process::Command::new(&example)
        .env("CELERIAC_ARCHIVE_DATABASE_URL", &env.database_url)
        .output()
        .unwrap_or_else(|e| panic!("run {} ({e}): cargo test and cargo build --all-targets build it", example.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // "user ada+…@example.com created; welcome e-mail <id> queued with it"
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let email = words[1];
    let id = TaskId::parse(words[words.len() - 4]).expect("the example prints the task id");

    assert_eq!(relay(&env).await.step().await.unwrap(), 1, "one committed row relayed");
    let record = env.broker.get(&id).await.unwrap().expect("the e-mail is in Redis under its id");
    assert_eq!(record.state, TaskState::Pending);
    assert_eq!(record.args["to"], email);
    assert_eq!(record.options.tags.unwrap()["kind"], "welcome");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM example_users WHERE email = $1")
        .bind(email)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "the user committed with it");
}
