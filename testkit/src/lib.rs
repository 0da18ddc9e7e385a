//! Test harness: a real `redis-server` on a free loopback port (stopped on drop, restartable
//! for fault tests; a local Cluster instead under `CELERIAC_TEST_REDIS=cluster`), a Redis
//! Cluster, a Sentinel set and a TLS server with an ACL user, a real PostgreSQL (a fresh
//! database per test), a proxy that loses a reply on demand, an SMTP sink that keeps what it
//! receives, an in-memory log writer, unique key namespaces so tests run in parallel without
//! flushing, and a deadline-bounded `eventually` for synchronising on state instead of
//! sleeping.

pub mod log_capture;
pub mod payloads;
pub mod postgres;
pub mod proc_stat;
pub mod redis_cluster;
pub mod redis_node;
pub mod redis_sentinel;
pub mod redis_server;
pub mod redis_tls;
pub mod reply_cutter;
pub mod smtp;

pub use log_capture::LogCapture;
pub use nix::sys::signal::Signal;
pub use payloads::order_json;
pub use postgres::PostgresServer;
pub use redis_cluster::RedisCluster;
pub use redis_sentinel::RedisSentinel;
pub use redis_server::RedisServer;
pub use redis_tls::{RedisTls, TestCertificates};
pub use reply_cutter::ReplyCutter;
pub use smtp::{ReceivedMail, SmtpSink};

use std::future::Future;
use std::time::Duration;

/// Sends `signal` to the process `pid` (a child the test started), as `kill -SIGNAL pid` would.
///
/// # Panics
/// When the signal cannot be sent (no such process, or not ours), which a test must not ignore.
pub fn signal(pid: u32, signal: Signal) {
    let target = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a process id fits in i32"));
    nix::sys::signal::kill(target, signal).unwrap_or_else(|e| panic!("send {signal} to process {pid}: {e}"));
}

/// A child process the test started, killed and reaped when dropped (a failed assertion
/// included).
pub struct KilledOnDrop(pub std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `binary` with `args` (no standard input) to its end, asserts that it failed, and
/// returns what it wrote to standard error: how a test proves a bad option is refused at start.
pub fn stderr_of_failed_run(binary: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(binary)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"));
    assert!(!out.status.success(), "{binary} {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A namespace no other test uses.
pub fn unique_namespace() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= until {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
