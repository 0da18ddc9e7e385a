//! A Redis that answers but not as configured (here: a certificate from a CA the gateway does
//! not trust) ends `celeriac-api` at start with one line naming the cause.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use celeriac_testkit::{RedisTls, TestCertificates, free_port, unique_namespace};

#[test]
fn an_untrusted_certificate_ends_the_gateway_at_start_in_one_line() {
    let server = RedisTls::start();
    let other = TestCertificates::generate(&server.dir(), "other");
    let mut child = Command::new(env!("CARGO_BIN_EXE_celeriac-api"))
        .env("CELERIAC_CONFIG_DIR", "/nonexistent")
        .env("CELERIAC__REDIS__URL", server.url())
        .env("CELERIAC__REDIS__CA_FILE", &other.ca_cert)
        .env("CELERIAC__REDIS__NAMESPACE", unique_namespace())
        .env("CELERIAC__HTTP__BIND", format!("127.0.0.1:{}", free_port()))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "the gateway did not end at start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("Error: redis: TLS: ") && errors[0].contains("certificate"),
        "{stderr}"
    );
}
