//! A `redis-server` child process on 127.0.0.1 and a free port, in its own temporary folder:
//! the default Redis of the tests. With `CELERIAC_TEST_REDIS=cluster`, [`RedisServer::start`]
//! starts a local Redis Cluster instead and [`RedisServer::url`] names it, so the suites that
//! take their Redis from here run unchanged against a Cluster.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server, killed when dropped.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    appendonly: bool,
    /// The Cluster standing in for this server under `CELERIAC_TEST_REDIS=cluster`.
    cluster: Option<crate::RedisCluster>,
}

/// The environment variable choosing the tests' default Redis: unset or `single` for one
/// node, `cluster` for a local Cluster (three masters, each with a replica).
pub const TEST_REDIS_VAR: &str = "CELERIAC_TEST_REDIS";

/// Whether the tests' default Redis is a Cluster (panics on a value it does not know, so a
/// typo cannot silently run the single-node suite).
pub fn default_is_cluster() -> bool {
    match std::env::var(TEST_REDIS_VAR).as_deref() {
        Err(_) | Ok("") | Ok("single") => false,
        Ok("cluster") => true,
        Ok(other) => panic!("{TEST_REDIS_VAR}={other:?}: expected single or cluster"),
    }
}

impl RedisServer {
    /// Starts a server with persistence off (the common case for tests); a Cluster under
    /// `CELERIAC_TEST_REDIS=cluster`.
    pub fn start() -> Self {
        if default_is_cluster() {
            let cluster = crate::RedisCluster::start();
            return Self {
                port: cluster.ports()[0],
                dir: tempfile::tempdir().expect("temp dir"),
                child: None,
                appendonly: false,
                cluster: Some(cluster),
            };
        }
        Self::start_single()
    }

    /// Starts one node whatever `CELERIAC_TEST_REDIS` says (for tests of a single node).
    pub fn start_single() -> Self {
        Self::start_with(false)
    }

    /// The port of every node (one, or each node of the Cluster standing in).
    pub fn ports(&self) -> Vec<u16> {
        self.cluster.as_ref().map_or_else(|| vec![self.port], |c| c.ports())
    }

    /// The Cluster standing in for this server, if any.
    pub fn cluster(&self) -> Option<&crate::RedisCluster> {
        self.cluster.as_ref()
    }

    /// The Cluster standing in for this server, to kill and restart its nodes.
    pub fn cluster_mut(&mut self) -> Option<&mut crate::RedisCluster> {
        self.cluster.as_mut()
    }

    /// Starts a server that writes an append-only file, so a restart keeps the data.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(appendonly: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Self {
            port: 0,
            dir,
            child: None,
            appendonly,
            cluster: None,
        };
        for _ in 0..20 {
            server.port = crate::free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server (is it installed? scripts/test.sh installs it)");
    }

    fn spawn(&mut self) -> bool {
        let log = self.dir.path().join("redis.log");
        let logged_before = crate::redis_node::log_len(&log);
        let child = Command::new(crate::redis_node::redis_server_binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            // Recommended for Celeriac (see README): task hashes stay compact with small payloads.
            .args(["--hash-max-listpack-value", "512"])
            // Recommended for the archive (docs/design.md "Redis settings"): its hand-over
            // DUMPs each ending's record, which Redis otherwise tries to compress first.
            .args(["--rdbcompression", "no"])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        crate::redis_node::wait_until_listening(&mut self.child, &log, logged_before)
    }

    /// The port (of the first master, on a Cluster).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        if let Some(cluster) = &self.cluster {
            return cluster.url();
        }
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        assert!(
            self.cluster.is_none(),
            "kill/restart of the default Redis is single-node only (unset {TEST_REDIS_VAR})"
        );
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and folder (with AOF, the data comes back).
    pub fn restart(&mut self) {
        self.kill();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
