//! The harness of the archive's tests: a redis-server, a PostgreSQL with a fresh database
//! migrated to this build's schema, a broker with the archive on, and tasks driven through
//! the broker's calls as a worker would (enqueue, claim, start, finish).

use std::collections::BTreeSet;
use std::time::Duration;

use celeriac::broker::{NewTask, Verdict};
use celeriac::{Broker, QueueName, TaskError};
use celeriac_archive::{ArchiveSettings, Archiver, schema};
use celeriac_testkit::{PostgresServer, RedisServer, unique_namespace};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::drive::started_outcomes;

pub const TTL: Duration = Duration::from_secs(3600);

pub struct Env {
    pub redis: RedisServer,
    pub pg: PostgresServer,
    pub broker: Broker,
    pub pool: PgPool,
    pub database_url: String,
}

pub async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .unwrap()
}

/// Servers, a migrated database and a broker with the archive on.
pub async fn env() -> Env {
    let redis = RedisServer::start();
    let pg = PostgresServer::start();
    let database_url = pg.fresh_database();
    let pool = pool(&database_url).await;
    schema::migrate(&pool).await.unwrap();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), TTL).unwrap().with_archive(true);
    Env {
        redis,
        pg,
        broker,
        pool,
        database_url,
    }
}

pub fn queue() -> QueueName {
    QueueName::parse("default").unwrap()
}

/// Settings for tests: small batches (several per run), a quick poll, and other consumers'
/// entries claimed only after `claim_idle`.
pub fn settings(batch: usize, claim_idle: Duration) -> ArchiveSettings {
    ArchiveSettings {
        database_url: None,
        batch,
        claim_idle,
        poll: Duration::from_millis(20),
        loops: 1,
    }
}

pub fn archiver(env: &Env, name: &str, batch: usize, claim_idle: Duration) -> Archiver {
    Archiver::new(env.broker.clone(), env.pool.clone(), settings(batch, claim_idle), name)
}

/// Runs `n` tasks to their end on worker `w1`: even ones succeed (result: twice the
/// argument), odd ones fail for good (dead-lettered). Returns their ids.
pub async fn run_tasks(broker: &Broker, n: usize) -> BTreeSet<String> {
    let tasks: Vec<NewTask> = (0..n).map(|i| NewTask::new(&queue(), "double", &json!({"n": i}))).collect();
    let outcomes = started_outcomes(broker, &queue(), "w1", &tasks, |d| {
        let i: usize = serde_json::from_str::<serde_json::Value>(&d.args).unwrap()["n"].as_u64().unwrap() as usize;
        if i.is_multiple_of(2) {
            Verdict::Success(json!(i * 2).to_string())
        } else {
            Verdict::Failure(TaskError::permanent(format!("odd {i}")).with_kind("Odd"))
        }
    })
    .await;
    broker.finish(&queue(), "w1", &outcomes).await.unwrap();
    tasks.iter().map(|t| t.id.to_string()).collect()
}

/// [`run_tasks`] `calls` times, `per_call` tasks each: `calls` archive entries of `per_call`
/// endings. Returns every id.
pub async fn run_tasks_in_calls(broker: &Broker, calls: usize, per_call: usize) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for _ in 0..calls {
        ids.extend(run_tasks(broker, per_call).await);
    }
    ids
}

/// Every archived task id, with how many rows each has (the primary key makes it one).
pub async fn archived_ids(pool: &PgPool) -> BTreeSet<String> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT task_id FROM celeriac_tasks")
        .fetch_all(pool)
        .await
        .unwrap();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "one row per task id");
    set
}

/// Endings still in the queue's archive stream (not archived yet): its entries' task ids.
pub async fn endings_waiting(broker: &Broker) -> usize {
    let entries: Vec<(String, Vec<(String, redis::Value)>)> = redis::cmd("XRANGE")
        .arg(broker.keys().archive(&queue()))
        .arg("-")
        .arg("+")
        .query_async(&mut broker.connection())
        .await
        .unwrap();
    entries
        .iter()
        .flat_map(|(_, fields)| fields)
        .filter(|(name, _)| name == "_i")
        .count()
}

/// Entries still in the queue's archive stream (not archived yet): one per script call that
/// ended tasks.
pub async fn stream_len(broker: &Broker) -> u64 {
    redis::cmd("XLEN")
        .arg(broker.keys().archive(&queue()))
        .query_async(&mut broker.connection())
        .await
        .unwrap()
}
