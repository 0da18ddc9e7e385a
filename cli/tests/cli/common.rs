//! The stack the CLI is tested against: a real redis-server (testkit), for the archive a real
//! PostgreSQL (testkit), and the real gateway, worker and archiver binaries (`celeriac-api`,
//! `celeriac-worker`, `celeriac-archiver` from the same `target/<profile>/` as this test, which
//! `scripts/test.sh` builds before the tests) on free loopback ports, and the `celeriac`
//! binary run as an operator would, with `CELERIAC_URL` and `CELERIAC_TOKEN`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use celeriac_testkit::{PostgresServer, RedisServer, free_port, unique_namespace};
use serde_json::Value;

/// The admin token every stack's gateway requires, so the token path is always exercised.
pub const TOKEN: &str = "cli-test-admin-token";

pub struct Stack {
    redis: RedisServer,
    namespace: String,
    pub url: String,
    gateway: Child,
    worker: Option<Child>,
    /// With [`Stack::with_archive`]: the archiver, and the PostgreSQL it writes to (dropped
    /// after the processes, by field order).
    archiver: Option<Child>,
    postgres: Option<PostgresServer>,
}

/// A finished `celeriac` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON (the `--json` output), or a panic showing the run.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code, showing the run otherwise.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }

    /// The error line on stderr: asserts there is exactly one line.
    pub fn one_error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:?}");
        lines[0]
    }

    /// The error line of a `--wait` run, after its course on stderr: asserts it is the last
    /// line and the only one of the tool's own.
    pub fn last_error_line(&self) -> &str {
        let errors: Vec<&str> = self.stderr.lines().filter(|l| l.starts_with("celeriac: ")).collect();
        assert_eq!(errors.len(), 1, "expected one error line on stderr: {self:?}");
        assert_eq!(self.stderr.lines().last(), Some(errors[0]), "the error comes last: {self:?}");
        errors[0]
    }
}

/// A binary built beside this test (the test runs from `target/<profile>/deps/`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build it first with `cargo build -p celeriac-api -p celeriac-worker`",
        path.display()
    );
    path
}

impl Stack {
    /// Redis and the gateway (requiring [`TOKEN`]); no worker, so tasks stay pending.
    pub fn gateway_only() -> Self {
        Self::gateway(RedisServer::start(), &[], None)
    }

    /// Redis, the gateway, the archive in a PostgreSQL of its own (the gateway applies the
    /// migrations), the archiver, and one worker on queue `default`. A task's Redis record
    /// lasts `result_ttl` once it has ended; after that the gateway reads it from the archive.
    pub fn with_archive(result_ttl: &str) -> Self {
        let postgres = PostgresServer::start();
        let database = postgres.fresh_database();
        let archive = [
            ("CELERIAC__ARCHIVE__ENABLED", "true".to_owned()),
            ("CELERIAC__ARCHIVE__DATABASE_URL", database),
            ("CELERIAC__TASKS__RESULT_TTL", result_ttl.to_owned()),
        ];
        let mut stack = Self::gateway(RedisServer::start(), &archive, Some(postgres));
        let archiver = server_command("celeriac-archiver", &stack.redis, &stack.namespace)
            .envs(archive.iter().map(|(name, value)| (name, value)))
            .spawn()
            .expect("spawn celeriac-archiver");
        stack.archiver = Some(archiver);
        stack.start_worker(&archive);
        stack
    }

    /// Redis and the gateway, with these settings on top of the usual ones.
    fn gateway(redis: RedisServer, settings: &[(&str, String)], postgres: Option<PostgresServer>) -> Self {
        let namespace = unique_namespace();
        let port = free_port();
        let gateway = server_command("celeriac-api", &redis, &namespace)
            .env("CELERIAC__HTTP__BIND", format!("127.0.0.1:{port}"))
            .envs(settings.iter().map(|(name, value)| (name, value)))
            .spawn()
            .expect("spawn celeriac-api");
        let stack = Self {
            redis,
            namespace,
            url: format!("http://127.0.0.1:{port}"),
            gateway,
            worker: None,
            archiver: None,
            postgres,
        };
        until(Duration::from_secs(30), "the gateway answers", || {
            stack.celeriac(&["queues"]).code == 0
        });
        stack
    }

    /// Redis, the gateway and one worker on queue `default`, registered.
    pub fn with_worker() -> Self {
        let mut stack = Self::gateway_only();
        stack.start_worker(&[]);
        stack
    }

    /// Starts one worker on queue `default`, with these settings, and waits for it to register.
    fn start_worker(&mut self, settings: &[(&str, String)]) {
        let worker = server_command("celeriac-worker", &self.redis, &self.namespace)
            .args(["--queues", "default", "--concurrency", "4"])
            .envs(settings.iter().map(|(name, value)| (name, value)))
            .spawn()
            .expect("spawn celeriac-worker");
        self.worker = Some(worker);
        until(Duration::from_secs(30), "the worker registers", || {
            let run = self.celeriac(&["--json", "workers"]);
            run.code == 0 && run.json()["workers"].as_array().is_some_and(|w| !w.is_empty())
        });
    }

    /// `celeriac ARGS` against this stack, with the token in `CELERIAC_TOKEN` and no stdin.
    pub fn celeriac(&self, args: &[&str]) -> Run {
        let mut command = self.command();
        command.args(args);
        run(command)
    }

    /// The `celeriac` command with this stack's URL and token in its environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_celeriac"));
        command
            .env("CELERIAC_URL", &self.url)
            .env("CELERIAC_TOKEN", TOKEN)
            .stdin(Stdio::null());
        command
    }

    /// Enqueues `task` with `args` (JSON) and returns its id.
    pub fn enqueue(&self, task: &str, args: &str) -> String {
        let run = self.celeriac(&["--json", "call", task, "--args", args]).expect_code(0);
        run.json()["task_id"].as_str().expect("a task id").to_owned()
    }

    /// The pending count of `queue`, as `celeriac --json queues` shows it.
    pub fn pending(&self, queue: &str) -> Value {
        let queues = self.celeriac(&["--json", "queues"]).expect_code(0).json();
        let all = queues["queues"].as_array().expect("a list of queues");
        all.iter().find(|q| q["name"] == queue).expect("the queue is listed")["pending"].clone()
    }
}

/// Runs `command` to its end (bounded by the command's own timeouts) and collects it.
pub fn run(mut command: Command) -> Run {
    let output: Output = command.output().expect("run celeriac");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn server_command(name: &str, redis: &RedisServer, namespace: &str) -> Command {
    let mut command = Command::new(sibling_binary(name));
    command
        .env("CELERIAC_CONFIG_DIR", "/nonexistent")
        .env("CELERIAC__REDIS__URL", redis.url())
        .env("CELERIAC__REDIS__NAMESPACE", namespace)
        .env("CELERIAC__AUTH__ADMIN_TOKENS", TOKEN)
        .env("CELERIAC__WORKER__LEASE_SECS", "5")
        .env("CELERIAC__WORKER__GRACE_SECS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// Polls `check` every 50 ms until it holds, or panics naming `what` after `deadline`.
pub fn until(deadline: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !check() {
        assert!(Instant::now() < end, "timed out after {deadline:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let children = self.worker.iter_mut().chain(self.archiver.iter_mut());
        for child in children.chain(std::iter::once(&mut self.gateway)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
