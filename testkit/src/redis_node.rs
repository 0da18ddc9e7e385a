//! One `redis-server` child process (a cluster node, a replica, a sentinel or a TLS server),
//! shared by the topology harnesses: spawned with its own arguments, waited for until it
//! listens, killed on drop. Also the pick of ports for servers that bind a second port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// A running redis-server (or sentinel), killed when dropped.
pub struct RedisNode {
    pub port: u16,
    child: Option<Child>,
    /// How it was started, to start it again after a kill.
    dir: PathBuf,
    args: Vec<String>,
}

impl RedisNode {
    /// Starts `redis-server ARGS` in `dir`, logging to `dir/<port>.log`; `None` when it exits
    /// or does not listen on `port` within 5 s (the port was taken: pick another).
    pub fn spawn(port: u16, dir: &Path, args: &[String]) -> Option<Self> {
        let mut node = Self {
            port,
            child: None,
            dir: dir.to_owned(),
            args: args.to_vec(),
        };
        node.launch().then_some(node)
    }

    /// Starts a killed node again with its arguments and folder (a cluster node keeps its
    /// identity in its nodes file, so it rejoins, as a replica if it was failed over);
    /// `true` once it listens.
    pub fn restart(&mut self) -> bool {
        self.kill();
        self.launch()
    }

    fn launch(&mut self) -> bool {
        let (port, dir, args) = (self.port, &self.dir, &self.args);
        let log = dir.join(format!("{port}.log"));
        let logged_before = log_len(&log);
        let child = Command::new(redis_server_binary())
            .args(args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .args(["--logfile", &format!("{port}.log")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        wait_until_listening(&mut self.child, &log, logged_before)
    }

    /// Kills the node at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How long a log is now (0 when it does not exist yet), so a restarted server's readiness is
/// read past what its earlier run wrote.
pub(crate) fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// Waits until the server just spawned as `child` writes, in its `log` past byte `from`, that
/// it listens: `true` then. `false` (and the child is gone) when it exits first, as it does
/// when its port was taken, or is not ready within 5 s. Its own log is the proof, not a
/// connection to the port: between the port's pick and the bind, another test's server may
/// take the port, and a connection would reach that one (the next test then talks to a
/// server that is killed under it).
pub(crate) fn wait_until_listening(child: &mut Option<Child>, log: &Path, from: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if child.as_mut().and_then(|c| c.try_wait().ok().flatten()).is_some() {
            *child = None;
            return false;
        }
        if says_it_listens(log, from) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(mut running) = child.take() {
        let _ = running.kill();
        let _ = running.wait();
    }
    false
}

/// Whether the log, past byte `from`, has the line a server (or a sentinel) writes once its
/// listening sockets are bound.
fn says_it_listens(log: &Path, from: u64) -> bool {
    let Ok(text) = std::fs::read(log) else {
        return false;
    };
    let fresh = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    fresh.contains("Ready to accept connections") || fresh.contains("Sentinel ID is")
}

/// Runs `redis-cli ARGS` and returns its standard output (panics if it cannot run).
pub fn redis_cli(args: &[String]) -> String {
    let out = Command::new("redis-cli")
        .args(args)
        .output()
        .expect("run redis-cli (apt package redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The next of this process's port pairs: a port `p` with `p` and `p + 10000` free (a cluster
/// node binds its bus on `p + 10000`). Ports come from 11000..21000, so buses stay in
/// 21000..31000, below Linux's ephemeral range (32768 and up) where bind-to-0 helpers land,
/// and a process-wide counter (from a random start) keeps this process's picks apart.
pub fn free_port_pair() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(0, 11000 + fastrand_u16() % 10000, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..10000 {
        let p = NEXT.fetch_add(1, Ordering::SeqCst);
        let p = 11000 + (p - 11000) % 10000;
        let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(p) && free(p + 10000) {
            return p;
        }
    }
    panic!("no free port pair in 11000..21000");
}

fn fastrand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    ((nanos ^ std::process::id().wrapping_mul(2654435761)) % 10000) as u16
}

/// The `redis-server` program every harness starts: `REDIS_SERVER_BIN`, else the one on the
/// `PATH`.
pub(crate) fn redis_server_binary() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into())
}
