//! A Redis that answers but not as configured (here: a wrong password on a TLS server) ends
//! `celeriac-worker` and `celeriac-beat` at start with one line naming the cause, instead of a
//! retry loop; a Redis that is simply down does not stop a worker from starting.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use celeriac_testkit::redis_tls::ACL_USER;
use celeriac_testkit::{RedisTls, TestCertificates, eventually, free_port, unique_namespace};

fn command(bin: &str, url: &str, ca: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("CELERIAC_CONFIG_DIR", "/nonexistent")
        .env("CELERIAC__REDIS__URL", url)
        .env("CELERIAC__REDIS__CA_FILE", ca)
        .env("CELERIAC__REDIS__NAMESPACE", unique_namespace())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits (at most 20 s) for the process to end; its exit code and standard error.
fn ended(mut child: Child) -> (Option<i32>, String) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status.code(), err);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("the process did not end at start");
}

#[test]
fn a_wrong_password_ends_the_worker_and_the_beat_at_start_in_one_line() {
    let server = RedisTls::start();
    let url = server.url_with(ACL_USER, "wrong");
    for bin in [env!("CARGO_BIN_EXE_celeriac-worker"), env!("CARGO_BIN_EXE_celeriac-beat")] {
        let child = command(bin, &url, &server.certs.ca_cert).spawn().unwrap();
        let (code, stderr) = ended(child);
        assert_ne!(code, Some(0), "{bin}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error: ")).collect();
        assert_eq!(
            errors,
            ["Error: redis: authentication failed (wrong user or password)"],
            "{bin}: {stderr}"
        );
    }
}

#[test]
fn a_redis_that_is_down_does_not_stop_a_worker_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCertificates::generate(dir.path(), "test");
    let health = free_port();
    let down = format!("rediss://127.0.0.1:{}", free_port());
    let mut child = command(env!("CARGO_BIN_EXE_celeriac-worker"), &down, &certs.ca_cert)
        .env("CELERIAC__WORKER__HEALTH_BIND", format!("127.0.0.1:{health}"))
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(eventually(Duration::from_secs(20), "the worker serves its health port", || async {
        std::net::TcpStream::connect(("127.0.0.1", health)).ok().map(|_| ())
    }));
    assert!(child.try_wait().unwrap().is_none(), "the worker is running");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_unusable_remote_ca_file_ends_the_worker_at_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not-a-certificate.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.path().join("missing.pem");
    for path in [&not_pem, &missing] {
        let child = command(env!("CARGO_BIN_EXE_celeriac-worker"), "redis://127.0.0.1:1", path)
            .env_remove("CELERIAC__REDIS__CA_FILE")
            .env("CELERIAC__WORKER__REMOTE_CA_FILE", path)
            .spawn()
            .unwrap();
        let (code, stderr) = ended(child);
        assert_ne!(code, Some(0), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error: ")).collect();
        assert_eq!(errors.len(), 1, "one line: {stderr}");
        assert!(errors[0].contains("worker.remote_ca_file"), "{stderr}");
    }
}
