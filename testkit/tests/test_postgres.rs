//! `celeriac-test-postgres`, as the browser and Python harnesses use it: it prints the URL of
//! a database that answers, and stops its server when told to (SIGTERM) or when the harness
//! that started it is gone (its standard input closes), so no server outlives its tests.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running program; a test that fails leaves no server behind (SIGTERM, then wait).
struct Program(Child);

impl Drop for Program {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            terminate(&self.0);
            let _ = self.0.wait();
        }
    }
}

fn terminate(child: &Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
}

/// Starts the program with a database of this name; answers it and the URL it printed.
fn start(database: &str) -> (Program, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_celeriac-test-postgres"))
        .args(["--database", database])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn celeriac-test-postgres");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the URL");
    (Program(child), line.trim().to_owned())
}

/// The database the URL leads to, as the server names it.
fn current_database(url: &str) -> String {
    let psql = std::path::Path::new(&std::env::var("PG_BIN_DIR").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())).join("psql");
    let out = Command::new(psql)
        .arg(url)
        .args(["-tAc", "SELECT current_database()"])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn port_of(url: &str) -> u16 {
    let after_host = url.rsplit_once(':').expect("a port in the URL").1;
    after_host.split('/').next().unwrap().parse().expect("a port number")
}

/// Waits for the program to exit by itself, and for its server's port to close.
fn assert_stopped(program: &mut Program, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while program.0.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "celeriac-test-postgres did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "its server still listens on port {port}"
    );
}

#[test]
fn its_database_answers_and_its_server_stops_when_standard_input_closes() {
    let (mut program, url) = start("harness_db");
    assert_eq!(current_database(&url), "harness_db", "{url}");
    drop(program.0.stdin.take());
    assert_stopped(&mut program, port_of(&url));
}

#[test]
fn its_server_stops_on_sigterm() {
    let (mut program, url) = start("celeriac");
    assert_eq!(current_database(&url), "celeriac", "{url}");
    terminate(&program.0);
    assert_stopped(&mut program, port_of(&url));
}
