//! Worker processes for fault tests: the real `celeriac-worker` binary as a child process,
//! killed with real signals, against a real redis-server.

use std::collections::HashSet;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use celeriac::broker::NewTask;
use celeriac::{Broker, QueueName, TaskId, TaskRecord, TaskState};
use celeriac_testkit::{RedisServer, eventually, unique_namespace};
use serde_json::Value;

/// A namespace on a redis-server, with a broker to enqueue and inspect.
pub struct Setup {
    pub redis: RedisServer,
    pub namespace: String,
    pub broker: Broker,
}

impl Setup {
    pub fn new(redis: RedisServer) -> Self {
        let namespace = unique_namespace();
        let broker = Broker::connect(&redis.url(), &namespace, Duration::from_secs(3600)).unwrap();
        Self { redis, namespace, broker }
    }

    /// Starts a worker process on `default` with a 2 s lease and a 1 s grace period.
    pub fn worker(&self, concurrency: usize) -> WorkerProcess {
        self.worker_with(concurrency, &[])
    }

    pub fn worker_with(&self, concurrency: usize, env: &[(&str, &str)]) -> WorkerProcess {
        let mut cmd = self.worker_command(&["--concurrency", &concurrency.to_string()]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        WorkerProcess {
            child: cmd.spawn().expect("spawn celeriac-worker"),
        }
    }

    /// The `celeriac-worker` command on `default` with `args`, this setup's Redis and
    /// namespace, a 2 s lease, a 1 s grace period, warnings on standard error and nothing on
    /// standard output (a caller may change any of it before spawning).
    pub fn worker_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_celeriac-worker"));
        cmd.args(["--queues", "default"])
            .args(args)
            .env("CELERIAC_CONFIG_DIR", "/nonexistent")
            .env("CELERIAC__REDIS__URL", self.redis.url())
            .env("CELERIAC__REDIS__NAMESPACE", &self.namespace)
            .env("CELERIAC__WORKER__LEASE_SECS", "2")
            .env("CELERIAC__WORKER__GRACE_SECS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        cmd
    }

    /// Starts a `celeriac-beat` process reading its settings from `config_dir`.
    pub fn beat(&self, config_dir: &std::path::Path) -> WorkerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_celeriac-beat"))
            .env("CELERIAC_CONFIG_DIR", config_dir)
            .env("CELERIAC__REDIS__URL", self.redis.url())
            .env("CELERIAC__REDIS__NAMESPACE", &self.namespace)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn celeriac-beat");
        WorkerProcess { child }
    }

    /// The id suffixes in a queue's pending list, oldest first (duplicates kept, to be counted).
    pub async fn pending_suffixes(&self, queue: &str) -> Vec<String> {
        use redis::AsyncCommands;
        let key = self.broker.keys().pending(&QueueName::parse(queue).unwrap());
        let mut ids: Vec<String> = self.broker.connection().lrange(key, 0, -1).await.unwrap();
        ids.reverse();
        ids
    }

    pub async fn enqueue(&self, task: &str, args: Value) -> TaskId {
        self.enqueue_many(task, &[args]).await.remove(0)
    }

    pub async fn enqueue_many(&self, task: &str, args: &[Value]) -> Vec<TaskId> {
        let queue = QueueName::parse("default").unwrap();
        let tasks: Vec<NewTask> = args.iter().map(|a| NewTask::new(&queue, task, a)).collect();
        self.broker.enqueue(&queue, &tasks, 0, None).await.unwrap();
        tasks.into_iter().map(|t| t.id).collect()
    }

    pub async fn record(&self, id: &TaskId) -> TaskRecord {
        self.broker.get(id).await.unwrap().expect("record exists")
    }

    pub async fn wait_state(&self, id: &TaskId, state: TaskState, deadline: Duration) -> TaskRecord {
        eventually(deadline, &format!("{id} reaches {state}"), || async {
            self.broker.get(id).await.ok().flatten().filter(|r| r.state == state)
        })
        .await
    }

    pub async fn wait_all(&self, ids: &[TaskId], state: TaskState, deadline: Duration) -> Vec<TaskRecord> {
        let mut records = Vec::new();
        for id in ids {
            records.push(self.wait_state(id, state, deadline).await);
        }
        records
    }

    /// The id of the only live worker.
    pub async fn live_worker_id(&self) -> String {
        eventually(Duration::from_secs(60), "a worker registers", || async {
            self.broker.live_workers().await.ok().and_then(|w| w.first().map(|w| w.id.clone()))
        })
        .await
    }

    /// The ids of the redis-server's clients, but for this setup's own connection: with one
    /// worker process running, that worker's connections.
    pub async fn other_clients(&self) -> HashSet<u64> {
        let mut conn = self.broker.connection();
        let own: u64 = redis::cmd("CLIENT").arg("ID").query_async(&mut conn).await.unwrap();
        let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut conn).await.unwrap();
        list.lines()
            .filter_map(|line| line.strip_prefix("id=")?.split(' ').next()?.parse().ok())
            .filter(|id| *id != own)
            .collect()
    }

    /// Waits until Redis has closed every one of `clients` (as after their process died): it
    /// reads a connection to its end, so whatever they had sent has run.
    pub async fn wait_disconnected(&self, clients: &HashSet<u64>) {
        eventually(Duration::from_secs(30), "Redis closes the connections", || async {
            self.other_clients().await.is_disjoint(clients).then_some(())
        })
        .await;
    }

    pub async fn assert_invariants(&self) {
        let report = self.broker.audit().await.unwrap();
        assert!(report.is_clean(), "invariants broken: {:#?}", report.problems);
    }
}

pub struct WorkerProcess {
    pub child: Child,
}

impl WorkerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, as in a crash or power loss.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as a deploy sends.
    pub fn terminate(&self) {
        celeriac_testkit::signal(self.pid(), celeriac_testkit::Signal::SIGTERM);
    }

    /// Waits for the process to exit, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
