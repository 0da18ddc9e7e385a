//! A PostgreSQL 15 server on 127.0.0.1 and a free port, in its own temporary folder: `initdb`
//! then `pg_ctl start`, stopped and its folder removed on drop; restartable for fault tests.
//! The server refuses to run as root, so as root it runs as the `postgres` user (Debian's
//! package creates it), which then owns the folder. Each test takes a fresh database.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian's `postgresql-15` puts its programs; `PG_BIN_DIR` overrides it.
const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL server (trust authentication, user `postgres`), stopped when dropped.
pub struct PostgresServer {
    port: u16,
    dir: tempfile::TempDir,
    running: bool,
}

impl PostgresServer {
    /// Creates a cluster and starts it; panics with the server's log when it cannot.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(dir.path()), "chown");
        }
        let data = dir.path().join("data");
        run(
            as_server_user(&bin("initdb")).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]),
            "initdb (is postgresql installed? scripts/test.sh installs it)",
        );
        let mut server = Self {
            port: 0,
            dir,
            running: false,
        };
        for _ in 0..10 {
            server.port = crate::free_port();
            if server.pg_ctl_start() {
                return server;
            }
        }
        panic!("could not start postgres: {}", server.log());
    }

    fn pg_ctl_start(&mut self) -> bool {
        // fsync off (speed) costs nothing unless the machine itself crashes; synchronous_commit
        // stays on: off, a stop in immediate mode loses commits already acknowledged, which
        // the fault tests would (rightly) see as lost tasks.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let status = as_server_user(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("pg.log"))
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl");
        self.running = status.success();
        self.running
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a database no other test uses and returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Fills the archive of `database` (a name or a URL, migrated) with `rows` synthetic
    /// tasks that ended over the last `rows` seconds, then ANALYZEs it. Their values are spread
    /// so each search filter is selective, as in a real history: 500 task names, 200 queues,
    /// one failure in 100 (error `mailbox <i> full`) and one revoke in 250, `to` =
    /// `u<i>@example.com` in the args, tag `user_id` = `i % 5000`.
    pub fn fill_archive(&self, database: &str, rows: u64) {
        self.psql(
            database,
            &format!(
                "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, error, attempts, deliveries, finished_at, tags) \
                 SELECT 'q' || (i % 200) || '-' || lpad(to_hex(i), 32, '0'), 'task_' || (i % 500), 'q' || (i % 200), \
                        CASE WHEN i % 100 = 0 THEN 'FAILURE' WHEN i % 250 = 1 THEN 'REVOKED' ELSE 'SUCCESS' END, \
                        jsonb_build_object('to', 'u' || i || '@example.com'), \
                        CASE WHEN i % 100 = 0 THEN jsonb_build_object('kind', 'SmtpError', 'message', 'mailbox ' || i || ' full') END, \
                        1, 1, now() - make_interval(secs => i), jsonb_build_object('user_id', (i % 5000)::text) \
                 FROM generate_series(1, {rows}) AS i"
            ),
        );
        self.psql(database, "ANALYZE celeriac_tasks");
    }

    /// Runs one SQL command with `psql` (fails the test if it fails).
    pub fn psql(&self, database: &str, sql: &str) {
        run(
            Command::new(bin("psql"))
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
                .args(["-p", &self.port.to_string(), "-d", database, "-c", sql]),
            "psql",
        );
    }

    /// Stops the server at once (immediate mode: no checkpoint, as a crash would).
    pub fn stop(&mut self) {
        if self.running {
            let _ = as_server_user(&bin("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
    }

    /// Starts it again on the same port and data (after [`stop`](Self::stop)).
    pub fn restart(&mut self) {
        self.stop();
        for _ in 0..50 {
            if self.pg_ctl_start() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("postgres did not restart on port {}: {}", self.port, self.log());
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bin(name: &str) -> PathBuf {
    Path::new(&std::env::var("PG_BIN_DIR").unwrap_or_else(|_| DEFAULT_BIN_DIR.into())).join(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The server's programs run as `postgres` when we are root (it refuses root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
