//! Test harness: a real `redis-server` on a free loopback port (stopped on drop, restartable
//! for fault tests), a real PostgreSQL likewise (a fresh database per test), a proxy that loses a reply on demand, an SMTP sink that keeps what it
//! receives, unique key namespaces so tests run in parallel without flushing, and a
//! deadline-bounded `eventually` for synchronising on state instead of sleeping.

pub mod postgres;
pub mod redis_server;
pub mod reply_cutter;
pub mod smtp;

pub use postgres::PostgresServer;
pub use redis_server::RedisServer;
pub use reply_cutter::ReplyCutter;
pub use smtp::{ReceivedMail, SmtpSink};

use std::future::Future;
use std::time::Duration;

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
