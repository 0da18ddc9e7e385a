//! A local Sentinel set: a master, a replica and three sentinels watching the master under one
//! name, on free loopback ports. Ready once every sentinel names the master. Stopped on drop.

use std::time::{Duration, Instant};

use crate::redis_node::{RedisNode, free_port_pair, redis_cli};

/// The name the sentinels know the master by.
pub const MASTER_NAME: &str = "celeriac";

/// A running master, replica and three sentinels.
pub struct RedisSentinel {
    pub master: RedisNode,
    pub replica: RedisNode,
    pub sentinels: Vec<RedisNode>,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub fn start() -> Self {
        for _ in 0..5 {
            if let Some(set) = Self::try_start() {
                return set;
            }
        }
        panic!("could not start a Sentinel set (is redis-server installed?)");
    }

    fn try_start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port_pair();
        // No 5 s wait before the replica's first sync (see redis_cluster.rs): an unsynced
        // replica is never promoted.
        let master = RedisNode::spawn(
            port,
            dir.path(),
            &["--port", &port.to_string(), "--repl-diskless-sync-delay", "0"].map(String::from),
        )?;
        let rport = free_port_pair();
        let replica = RedisNode::spawn(
            rport,
            dir.path(),
            // The same for the old master's first sync once this replica is promoted.
            &[
                "--port",
                &rport.to_string(),
                "--replicaof",
                "127.0.0.1",
                &port.to_string(),
                "--repl-diskless-sync-delay",
                "0",
            ]
            .map(String::from),
        )?;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let sport = free_port_pair();
            // A sentinel rewrites its configuration file, so each has its own.
            let conf = dir.path().join(format!("sentinel-{sport}.conf"));
            let text = format!(
                "port {sport}\nbind 127.0.0.1\nsentinel monitor {MASTER_NAME} 127.0.0.1 {port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\nsentinel failover-timeout {MASTER_NAME} 5000\n"
            );
            std::fs::write(&conf, text).expect("write sentinel.conf");
            let args = [conf.to_string_lossy().into_owned(), "--sentinel".into()];
            sentinels.push(RedisNode::spawn(sport, dir.path(), &args)?);
        }
        let set = Self {
            master,
            replica,
            sentinels,
            _dir: dir,
        };
        set.wait_until_watched(Duration::from_secs(10)).then_some(set)
    }

    /// Waits until every running sentinel names a master and knows its replica, and the
    /// replica has synced (only a synced replica can be promoted).
    pub fn wait_until_watched(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            let synced = !self.replica.is_running()
                || crate::redis_cluster::replica_synced(&redis_cli(&[
                    "-p".into(),
                    self.replica.port.to_string(),
                    "info".into(),
                    "replication".into(),
                ]));
            let ready = synced
                && self.sentinels.iter().filter(|s| s.is_running()).all(|s| {
                    let ask =
                        |what: &str| redis_cli(&["-p".into(), s.port.to_string(), "sentinel".into(), what.into(), MASTER_NAME.into()]);
                    ask("get-master-addr-by-name").contains("127.0.0.1") && ask("replicas").contains("127.0.0.1")
                });
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// `redis+sentinel://` naming every sentinel and the master.
    pub fn url(&self) -> String {
        self.url_for(MASTER_NAME)
    }

    /// The same, naming another master (for a misconfiguration test).
    pub fn url_for(&self, master: &str) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        format!("redis+sentinel://{}/{master}", hosts.join(","))
    }
}
