//! The test harness: a real redis-server on a free port, the real gateway on port 0 with a
//! unique key namespace, and optionally an in-process worker, so tests run in parallel.

use std::time::Duration;

use celeriac::{Broker, Settings, Task, TaskContext, TaskError, TaskSpec};
use celeriac_api::{Application, GatewaySettings};
use celeriac_testkit::{RedisServer, ReplyCutter, unique_namespace};
use celeriac_worker::settings::WorkerSettings;
use celeriac_worker::{Registry, Worker, WorkerConfig, WorkerProcessSettings};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub redis: RedisServer,
    pub settings: GatewaySettings,
    pub address: String,
    pub client: reqwest::Client,
    pub broker: Broker,
    pub stop: CancellationToken,
    /// The reports folder of `settings`, removed when the app is dropped.
    _reports_dir: tempfile::TempDir,
}

/// Settings for a test: its own namespace, loopback port 0, a temporary reports folder.
pub fn test_settings(redis: &RedisServer, reports_dir: &std::path::Path) -> GatewaySettings {
    let mut settings = GatewaySettings {
        common: Settings {
            environment: "test".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    settings.redis.url = redis.url();
    settings.redis.namespace = unique_namespace();
    settings.http.bind = ([127, 0, 0, 1], 0).into();
    settings.reports.dir = reports_dir.to_owned();
    settings.webhooks.secret = Some(TEST_WEBHOOK_SECRET.into());
    settings
}

/// The `[webhooks] secret` of the test settings.
pub const TEST_WEBHOOK_SECRET: &str = "webhook-secret-of-the-tests";

impl TestApp {
    /// The gateway alone.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The gateway, with settings changed by `adjust` first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut GatewaySettings)) -> Self {
        Self::spawn_on(RedisServer::start(), adjust).await
    }

    /// The gateway on one redis-server even under `CELERIAC_TEST_REDIS=cluster`, for tests that
    /// kill it.
    pub async fn spawn_single() -> Self {
        Self::spawn_on(RedisServer::start_single(), |_| {}).await
    }

    /// The gateway on `redis`, with settings changed by `adjust` first.
    async fn spawn_on(redis: RedisServer, adjust: impl FnOnce(&mut GatewaySettings)) -> Self {
        let reports_dir = tempfile::tempdir().unwrap();
        let mut settings = test_settings(&redis, reports_dir.path());
        adjust(&mut settings);
        let stop = CancellationToken::new();
        let app = Application::build(settings.clone(), stop.clone()).await.expect("gateway builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let broker = Broker::connect(&settings.redis.url, &settings.redis.namespace, settings.result_ttl())
            .unwrap()
            .with_archive(settings.archive.enabled);
        Self {
            redis,
            settings,
            address,
            client: {
                celeriac::tls::install_crypto_provider();
                reqwest::Client::new()
            },
            broker,
            stop,
            _reports_dir: reports_dir,
        }
    }

    /// The gateway talking to Redis through a proxy that can lose a reply on demand.
    /// (The proxy stands before one port: one node, even under `CELERIAC_TEST_REDIS=cluster`.)
    pub async fn spawn_behind_reply_cutter() -> (Self, ReplyCutter) {
        let redis = RedisServer::start_single();
        let proxy = ReplyCutter::start(redis.port());
        let app = Self::spawn_on(redis, |settings| settings.redis.url = proxy.url()).await;
        (app, proxy)
    }

    /// The settings of a worker beside this gateway: the same common sections, leases and
    /// grace of 5 s.
    pub fn worker_settings(&self) -> WorkerProcessSettings {
        WorkerProcessSettings {
            common: self.settings.common.clone(),
            worker: WorkerSettings {
                lease: Duration::from_secs(5),
                grace: Duration::from_secs(5),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Starts an in-process worker on every built-in queue with `registry`; it stops with the app.
    pub async fn start_worker(&self, registry: Registry) -> CancellationToken {
        self.start_worker_with(registry, |_| {}).await
    }

    /// [`TestApp::start_worker`] with its config changed by `adjust` first.
    pub async fn start_worker_with(&self, registry: Registry, adjust: impl FnOnce(&mut WorkerConfig)) -> CancellationToken {
        let mut config = WorkerConfig::from_settings(&self.worker_settings());
        config.concurrency = 4;
        adjust(&mut config);
        let token = self.stop.child_token();
        let specs: Vec<_> = registry.specs().cloned().collect();
        self.broker.register_tasks(&specs).await.expect("register task types");
        tokio::spawn(Worker::new(self.broker.clone(), registry, config).run(token.clone()));
        token
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request sent")
    }

    /// `post_json` with an `Idempotency-Key` header.
    pub async fn post_json_with_key(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        let request = self.client.post(self.url(path)).header("idempotency-key", key).json(body);
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    /// `POST` without a body, as the action routes (revoke, retry, pause, run) take it.
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.client.post(self.url(path)).send().await.expect("request sent")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.expect("request sent")
    }

    /// Enqueues through `POST /tasks` and returns the task id.
    pub async fn enqueue(&self, task: &str, args: Value) -> String {
        let response = self.post_json("/tasks", &serde_json::json!({ "task": task, "args": args })).await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned()
    }

    /// The record once the task is terminal (long-polls, with a deadline).
    pub async fn wait_terminal(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let record: Value = self.get(&format!("/tasks/{id}?wait=10")).await.json().await.unwrap();
            if ["SUCCESS", "FAILURE", "REVOKED"].contains(&record["state"].as_str().unwrap_or("")) {
                return record;
            }
            assert!(tokio::time::Instant::now() < deadline, "task {id} not finished: {record}");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A task that panics, to prove a panic is a FAILURE and the worker lives on.
pub struct Panics;

impl Task for Panics {
    type Args = Value;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: "panics".into(),
            queue: celeriac::QueueName::parse("default").unwrap(),
            options: Default::default(),
        }
    }

    async fn run(&self, _ctx: TaskContext, _args: Value) -> Result<Value, TaskError> {
        panic!("deliberate panic for the test")
    }
}

/// Fails with a retryable error on its first `fail_times` attempts, then succeeds; retries
/// quickly (0.1 s, no jitter) so tests stay short.
pub struct Flaky;

#[derive(serde::Deserialize)]
pub struct FlakyArgs {
    pub fail_times: u32,
}

impl Task for Flaky {
    type Args = FlakyArgs;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        let options = celeriac::TaskOptions {
            max_retries: Some(3),
            retry_delay: Some(0.1),
            retry_jitter: Some(false),
            retry_backoff: Some(false),
            ..Default::default()
        };
        TaskSpec {
            name: "flaky".into(),
            queue: celeriac::QueueName::parse("default").unwrap(),
            options,
        }
    }

    async fn run(&self, ctx: TaskContext, args: FlakyArgs) -> Result<Value, TaskError> {
        if ctx.attempt() <= args.fail_times {
            return Err(TaskError::retryable(format!("attempt {} fails", ctx.attempt())));
        }
        Ok(serde_json::json!({ "attempt": ctx.attempt() }))
    }
}

/// Returns the `traceparent` its context hands it (`null` without one).
pub struct TraceEcho;

impl Task for TraceEcho {
    type Args = Value;
    type Output = Option<String>;

    fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: "trace_echo".into(),
            queue: celeriac::QueueName::parse("default").unwrap(),
            options: Default::default(),
        }
    }

    async fn run(&self, ctx: TaskContext, _args: Value) -> Result<Option<String>, TaskError> {
        Ok(ctx.traceparent())
    }
}

/// Starts a chain `add(args) -> add([10])` from inside a task, as a task author would, and
/// returns the workflow's id.
pub struct StartsWorkflow;

impl Task for StartsWorkflow {
    type Args = Value;
    type Output = String;

    fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: "starts_workflow".into(),
            queue: celeriac::QueueName::parse("default").unwrap(),
            options: Default::default(),
        }
    }

    async fn run(&self, ctx: TaskContext, args: Value) -> Result<String, TaskError> {
        use celeriac::workflow::{Plan, Step};
        let broker = ctx.broker().ok_or_else(|| TaskError::permanent("no broker"))?;
        let plan = Plan::compile(&Step::chain(vec![
            Step::task("add", args),
            Step::task("add", serde_json::json!([10])),
        ]))
        .map_err(|e| TaskError::permanent(e.to_string()))?;
        let started = broker
            .start_workflow(&plan)
            .await
            .map_err(|e| TaskError::retryable(e.to_string()))?;
        Ok(started.workflow_id)
    }
}

/// The diagnostic tasks plus `panics`, `flaky`, `trace_echo` and `starts_workflow`.
pub fn test_registry() -> Registry {
    let mut registry = celeriac_worker::tasks::diagnostic_registry();
    registry
        .register(Panics)
        .register(Flaky)
        .register(TraceEcho)
        .register(StartsWorkflow);
    registry
}
