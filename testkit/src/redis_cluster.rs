//! A local Redis Cluster: three masters, each with a replica, on free loopback ports (each
//! node's cluster bus on its port + 10000), created with `redis-cli --cluster create` and
//! ready once every node reports `cluster_state:ok`. Stopped and removed on drop.

use std::time::{Duration, Instant};

use crate::redis_node::{RedisNode, free_port_pair, redis_cli};

/// A running Cluster of six nodes (three masters with a replica each).
pub struct RedisCluster {
    nodes: Vec<RedisNode>,
    // Dropped after the nodes (fields drop in order): their folders outlive them.
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts three masters with one replica each.
    pub fn start() -> Self {
        Self::start_with(1)
    }

    /// Starts three masters with `replicas` replicas each (0 for the lightest cluster).
    pub fn start_with(replicas: usize) -> Self {
        let count = 3 * (1 + replicas);
        for _ in 0..5 {
            if let Some(cluster) = Self::try_start(count, replicas) {
                return cluster;
            }
        }
        panic!("could not start a Redis Cluster (is redis-server installed? scripts/test.sh installs it)");
    }

    fn try_start(count: usize, replicas: usize) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let port = free_port_pair();
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "2000",
                "--hash-max-listpack-value",
                "512",
                "--rdbcompression",
                "no",
                // Redis waits 5 s by default before a diskless full sync, for more replicas to
                // join it: a master killed within 5 s of the start had a replica that never
                // synced, which Redis then refuses to promote ("Disconnected from master for
                // longer than allowed"), so the failover never happened.
                "--repl-diskless-sync-delay",
                "0",
            ]
            .map(String::from)
            .to_vec();
            nodes.push(RedisNode::spawn(port, dir.path(), &args)?);
        }
        let mut create: Vec<String> = vec!["--cluster".into(), "create".into()];
        create.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.extend(["--cluster-replicas".into(), replicas.to_string(), "--cluster-yes".into()]);
        let out = redis_cli(&create);
        if !out.contains("All 16384 slots covered") {
            eprintln!("redis-cli --cluster create failed: {out}");
            return None;
        }
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_until_ok(Duration::from_secs(20)).then_some(cluster)
    }

    /// Waits until every running node says `cluster_state:ok` and every replica has synced
    /// with its master (only a synced replica can be promoted).
    pub fn wait_until_ok(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            let ok = self.nodes.iter().filter(|n| n.is_running()).all(|n| {
                let ask = |what: &[&str]| {
                    let mut args = vec!["-p".to_owned(), n.port.to_string()];
                    args.extend(what.iter().map(|w| w.to_string()));
                    redis_cli(&args)
                };
                ask(&["cluster", "info"]).contains("cluster_state:ok") && replica_synced(&ask(&["info", "replication"]))
            });
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Every node's port (masters first at creation, then replicas).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// `redis://` of one node, for commands aimed at it (MONITOR, CLUSTER ...).
    pub fn node_url(&self, index: usize) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[index].port)
    }

    /// Kills one node at once (SIGKILL), as a crash would.
    pub fn kill_node(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// The indexes of the running masters that serve slots and have a synced replica: the ones
    /// a test may kill without losing the Cluster (their replica takes over). Empty while a
    /// failover is under way.
    pub fn masters_with_replica(&self) -> Vec<usize> {
        let table = self.nodes_table();
        let healthy = |f: &[String]| !f[2].contains("fail") && f[7] == "connected";
        table
            .iter()
            .filter(|f| f[2].contains("master") && f.len() > 8 && healthy(f))
            .filter(|master| table.iter().any(|r| r[3] == master[0] && healthy(r) && self.synced(port_of(r))))
            .filter_map(|master| port_of(master))
            .filter_map(|port| self.nodes.iter().position(|n| n.port == port && n.is_running()))
            .collect()
    }

    /// The port of the replica of the master at `index`, as the Cluster sees it now.
    pub fn replica_of(&self, index: usize) -> Option<u16> {
        let table = self.nodes_table();
        let id = &table.iter().find(|f| port_of(f) == Some(self.nodes[index].port))?[0];
        table.iter().find(|f| &f[3] == id).and_then(|f| port_of(f))
    }

    /// `CLUSTER NODES` as the first running node answers it: one row of fields per node (id,
    /// address, flags, master id, ..., link state, slots).
    fn nodes_table(&self) -> Vec<Vec<String>> {
        let Some(asked) = self.nodes.iter().find(|n| n.is_running()) else {
            return Vec::new();
        };
        redis_cli(&["-p".into(), asked.port.to_string(), "cluster".into(), "nodes".into()])
            .lines()
            .map(|l| l.split(' ').map(str::to_owned).collect::<Vec<_>>())
            .filter(|f| f.len() >= 8)
            .collect()
    }

    /// Whether the node on `port` says it is a master (`ROLE`).
    pub fn is_master(&self, port: u16) -> bool {
        redis_cli(&["-p".into(), port.to_string(), "role".into()]).starts_with("master")
    }

    /// Whether the node on `port` is running and, if a replica, synced with its master.
    fn synced(&self, port: Option<u16>) -> bool {
        let Some(port) = port else { return false };
        self.nodes.iter().any(|n| n.port == port && n.is_running())
            && replica_synced(&redis_cli(&["-p".into(), port.to_string(), "info".into(), "replication".into()]))
    }

    /// Starts a killed node again: it rejoins the Cluster (as a replica of the node that
    /// took its slots over); `true` once it listens.
    pub fn restart_node(&mut self, index: usize) -> bool {
        self.nodes[index].restart()
    }
}

/// The port of a `CLUSTER NODES` row (`host:port@bus`).
fn port_of(row: &[String]) -> Option<u16> {
    row[1].split(['@', ':']).nth(1).and_then(|p| p.parse().ok())
}

/// `INFO replication` of a node: a master, or a replica whose link to its master is up.
pub(crate) fn replica_synced(info: &str) -> bool {
    !info.contains("role:slave") || info.contains("master_link_status:up")
}
