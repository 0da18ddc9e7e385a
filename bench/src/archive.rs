//! `--archive`: what the PostgreSQL archive costs and how fast it is, on a PostgreSQL of its
//! own (started like the tests' one, on loopback):
//! - the drain of `tasks` no-op tasks with the archive off, then on with no archiver running
//!   (the endings wait in Redis' archive streams), then on with the archiver running; and
//!   Redis' CPU per drained task in each (the hand-over, then the archiver's reads, on top);
//! - the archiver's ingest rate: the time it takes to move the endings the second drain left
//!   into PostgreSQL, counted there;
//! - the outbox: from the commit of a transaction that called `celeriac_enqueue()` to its task
//!   being pending in Redis, one at a time, the relay woken by NOTIFY;
//! - history search through the gateway (`GET /tasks?source=archive`) over `rows` archived
//!   tasks, for each indexed filter.

use std::time::{Duration, Instant};

use celeriac::TaskId;
use celeriac_archive::sqlx::{self, PgPool, postgres::PgPoolOptions};
use celeriac_testkit::PostgresServer;

use crate::measures::{Bench, percentile};
use crate::procs::{self, Proc};

/// The query string of a filter's `i`-th search.
type QueryOf = fn(usize) -> String;

/// Sizes of the archive run.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveSizes {
    /// No-op tasks of each drain.
    pub tasks: usize,
    /// Outbox enqueues timed one by one.
    pub outbox: usize,
    /// Archived tasks searched.
    pub rows: u64,
    /// Searches timed per filter.
    pub searches: usize,
    pub concurrency: usize,
}

impl Bench {
    pub async fn archive(&mut self, sizes: ArchiveSizes) -> anyhow::Result<()> {
        let pg = PostgresServer::start();
        let url = pg.fresh_database();
        let pool = PgPoolOptions::new().max_connections(2).connect(&url).await?;
        celeriac_archive::schema::migrate(&pool).await?;
        // The settings that turn the archive on, for the gateway, workers and archiver.
        let on = [
            ("CELERIAC__ARCHIVE__ENABLED", "true".to_owned()),
            ("CELERIAC__ARCHIVE__DATABASE_URL", url.clone()),
        ];
        let n = sizes.tasks;

        let off = self.drain_one("bench-archive-off", "noop", n, sizes.concurrency, &[]).await?;
        let waiting = self.drain_one("bench-archive-on", "noop", n, sizes.concurrency, &on).await?;
        let archiver = self.spawn_with("celeriac-archiver", &[], &on)?;
        let ingest = self.wait_until_archived("bench-archive-on").await?;
        wait_for_rows(&pool, n).await?;
        let running = self.drain_one("bench-archive-live", "noop", n, sizes.concurrency, &on).await?;
        wait_for_rows(&pool, 2 * n).await?;

        let c = sizes.concurrency;
        let drains = [
            ("archive off", &off),
            ("archive on (archiver stopped)", &waiting),
            ("archive on (archiver running)", &running),
        ];
        for (what, drain) in drains {
            self.report
                .add(&format!("drain, {what}, 1 worker, concurrency {c}"), drain.rate(n), "tasks/s");
        }
        self.report.add(
            "drain with the archive on (archiver running) against off",
            off.took.as_secs_f64() / running.took.as_secs_f64() * 100.0,
            "%",
        );
        for (what, drain) in drains {
            self.report
                .add(&format!("Redis CPU per drained task, {what}"), drain.redis.cpu_us, "µs");
        }
        for (what, drain) in drains {
            self.report.add(
                &format!("Redis keys at the drain's start, {what}"),
                drain.keys_at_start as f64,
                "keys",
            );
        }
        let ingest_rate = n as f64 / ingest.as_secs_f64();
        self.report
            .add(&format!("archive ingest, {n} endings waiting in Redis"), ingest_rate, "tasks/s");

        let mut latencies = self.outbox_latencies(&pool, sizes.outbox).await?;
        latencies.sort();
        self.report
            .add("outbox, commit to pending in Redis, p50", percentile(&latencies, 0.50), "ms");
        self.report
            .add("outbox, commit to pending in Redis, p99", percentile(&latencies, 0.99), "ms");
        archiver.stop();

        pg.fill_archive(&url, sizes.rows);
        self.search(&on, sizes.rows, sizes.searches).await
    }

    /// Enqueues through the outbox one task at a time (a transaction calling
    /// `celeriac_enqueue()`, then its commit) and times each from the commit call to its task
    /// being pending in Redis; the archiver's relay, running, moves them.
    async fn outbox_latencies(&self, pool: &PgPool, n: usize) -> anyhow::Result<Vec<Duration>> {
        let mut conn = self.broker.connection();
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            let mut tx = pool.begin().await?;
            let id: String = sqlx::query_scalar("SELECT celeriac_enqueue('noop', '{}'::jsonb, 'bench-outbox')")
                .fetch_one(&mut *tx)
                .await?;
            // From the commit call, not from its answer: the relay hears the commit's NOTIFY
            // as the answer leaves PostgreSQL, and on a core of its own (archive_pinned.sh)
            // it often had the task in Redis before the bench had read that answer (p50 0.04
            // and 0.05 ms in two pinned runs of five, timed from the answer).
            let committed = Instant::now();
            tx.commit().await?;
            let id = TaskId::parse(&id).ok_or_else(|| anyhow::anyhow!("celeriac_enqueue returned {id:?}"))?;
            let key = self.broker.keys().task(&id);
            loop {
                let exists: bool = redis::AsyncCommands::exists(&mut conn, &key).await?;
                if exists {
                    break;
                }
                anyhow::ensure!(committed.elapsed() < Duration::from_secs(10), "the relay did not send {id}");
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            latencies.push(committed.elapsed());
        }
        Ok(latencies)
    }

    /// `GET /tasks?source=archive` through a gateway on the archive, each indexed filter
    /// `searches` times (with values that vary, as users' searches do), first page of 50.
    async fn search(&mut self, on: &[(&'static str, String)], rows: u64, searches: usize) -> anyhow::Result<()> {
        let port = celeriac_testkit::free_port();
        let mut env = on.to_vec();
        env.push(("CELERIAC__HTTP__BIND", format!("127.0.0.1:{port}")));
        let gateway = self.spawn_with("celeriac-api", &[], &env)?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let until = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            anyhow::ensure!(Instant::now() < until, "the gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let filters: [(&str, QueryOf); 7] = [
            ("task", |i| format!("task=task_{}", i * 7 % 500)),
            ("queue", |i| format!("queue=q{}", i * 7 % 200)),
            ("state", |_| "state=REVOKED".into()),
            ("time range", |i| {
                let to = chrono::Utc::now() - chrono::Duration::seconds(600 * (i as i64 + 1));
                let from = to - chrono::Duration::minutes(5);
                let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                format!("from={}&to={}", rfc3339(from), rfc3339(to))
            }),
            ("tag", |i| format!("tag=user_id:{}", i * 77 % 5000)),
            ("error text", |i| format!("error=mailbox%20{}00", i + 1)),
            ("args", |i| format!("args=%7B%22to%22%3A%22u{}%40example.com%22%7D", i * 997 + 1)),
        ];
        for (name, query) in filters {
            let mut latencies = Vec::with_capacity(searches);
            for i in 0..searches {
                let url = format!("{base}/tasks?source=archive&limit=50&{}", query(i));
                let t0 = Instant::now();
                let response = client.get(&url).send().await?;
                let status = response.status();
                let body = response.text().await?;
                latencies.push(t0.elapsed());
                anyhow::ensure!(status == 200, "{url} answered {status}: {body}");
            }
            latencies.sort();
            self.report.add(
                &format!("history search over {rows} tasks, by {name}, p50"),
                percentile(&latencies, 0.50),
                "ms",
            );
            self.report.add(
                &format!("history search over {rows} tasks, by {name}, p99"),
                percentile(&latencies, 0.99),
                "ms",
            );
        }
        gateway.stop();
        Ok(())
    }

    /// Waits until the archiver has moved every ending of `queue`'s archive stream into
    /// PostgreSQL (it deletes each entry once its row is committed): the time it took. Read
    /// in Redis (`XLEN`, constant time), so the wait takes nothing from PostgreSQL, as a
    /// `count(*)` of the growing table every few milliseconds would.
    async fn wait_until_archived(&self, queue: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let stream = self.broker.keys().archive(&celeriac::QueueName::parse(queue).expect("valid queue"));
        let mut conn = self.broker.connection();
        loop {
            let left: u64 = redis::cmd("XLEN").arg(&stream).query_async(&mut conn).await?;
            if left == 0 {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(300),
                "{left} endings of {queue} still waiting after 5 minutes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A gateway, worker or archiver process on the bench's Redis, with `extra` settings.
    pub fn spawn_with(&self, name: &str, args: &[&str], extra: &[(&'static str, String)]) -> anyhow::Result<Proc> {
        let mut env = self.env();
        env.extend_from_slice(extra);
        procs::spawn(name, args, &env)
    }
}

/// Waits until the archive holds `n` tasks (a check after a measure, not timed).
async fn wait_for_rows(pool: &PgPool, n: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM celeriac_tasks").fetch_one(pool).await?;
        if rows >= n as i64 {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the archive holds {rows} of {n} tasks after 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
