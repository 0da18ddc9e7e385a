//! The processes under measurement: the gateway and worker binaries (found beside this one),
//! and what /proc says about their CPU time and memory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub use celeriac_testkit::proc_stat::cpu_of;

/// A child process, killed on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time used so far.
    pub fn cpu(&self) -> Duration {
        cpu_of(self.pid())
    }

    /// Resident memory now and at its peak, in bytes.
    pub fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM, then wait.
    pub fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary built beside this one (same target profile).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} not found: build it first (cargo build --release --bins)",
        path.display()
    );
    Ok(path)
}

/// The runtime threads of every worker the bench starts (`--worker-threads`), set once.
static WORKER_THREADS: OnceLock<usize> = OnceLock::new();

/// Sets the runtime threads of the workers started from now on (the first call wins).
pub fn set_worker_threads(threads: usize) {
    let _ = WORKER_THREADS.set(threads);
}

/// The runtime threads the bench's workers run on; `None`: the worker's default.
pub fn worker_threads() -> Option<usize> {
    WORKER_THREADS.get().copied()
}

/// Starts the gateway or worker binary `name` with `args`, on the environment `env` (the
/// bench's Redis and namespace) over the bench's defaults.
pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)]) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(sibling(name)?);
    cmd.args(args)
        .env("CELERIAC_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let (Some(threads), "celeriac-worker") = (worker_threads(), name) {
        cmd.env("CELERIAC__WORKER__THREADS", threads.to_string());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(Proc { child: cmd.spawn()? })
}
