//! A TLS-only `redis-server` with an ACL user, and the certificates it needs, made in the test
//! (a CA, a server certificate for 127.0.0.1 and localhost, a client certificate), written to
//! the server's temporary folder and removed with it: no key is ever committed.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::redis_node::{RedisNode, free_port_pair};

/// The ACL user the server knows, with its password.
pub const ACL_USER: &str = "celeriac";
pub const ACL_PASSWORD: &str = "s3cret-pass";

/// PEM files of a certificate authority and what it signed.
pub struct TestCertificates {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCertificates {
    /// Makes a new CA and its certificates in `dir` (`prefix` keeps two sets apart).
    pub fn generate(dir: &std::path::Path, prefix: &str) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("celeriac test CA {prefix}"));
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA certificate");
        let sign = |names: Vec<String>, cn: &str| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.signed_by(&key, &ca).expect("signed certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = sign(vec!["127.0.0.1".into(), "localhost".into()], "localhost");
        let (client_cert, client_key) = sign(Vec::new(), "celeriac client");
        let write = |name: &str, text: &str| {
            let path = dir.join(format!("{prefix}-{name}"));
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        Self {
            ca_cert: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
        }
    }
}

/// A redis-server that speaks only TLS, knows the ACL user [`ACL_USER`] and refuses the
/// default user.
pub struct RedisTls {
    node: RedisNode,
    pub certs: TestCertificates,
    dir: tempfile::TempDir,
}

impl RedisTls {
    /// Starts a server that checks a client certificate when one is given.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a server that refuses clients without a certificate its CA signed (mTLS).
    pub fn start_requiring_client_certs() -> Self {
        Self::start_with(true)
    }

    fn start_with(require_client_cert: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = TestCertificates::generate(dir.path(), "test");
        for _ in 0..5 {
            let port = free_port_pair();
            let path = |p: &PathBuf| p.to_string_lossy().into_owned();
            let args: Vec<String> = vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                path(&certs.server_cert),
                "--tls-key-file".into(),
                path(&certs.server_key),
                "--tls-ca-cert-file".into(),
                path(&certs.ca_cert),
                "--tls-auth-clients".into(),
                (if require_client_cert { "yes" } else { "optional" }).into(),
            ];
            let mut args = args;
            // Each word is its own argument: redis-server quotes every argument it is given.
            args.extend(["--user", ACL_USER, "on", &format!(">{ACL_PASSWORD}"), "~*", "&*", "+@all"].map(String::from));
            args.extend(["--user", "default", "off"].map(String::from));
            if let Some(node) = RedisNode::spawn(port, dir.path(), &args) {
                return Self { node, certs, dir };
            }
        }
        panic!("could not start a TLS redis-server");
    }

    pub fn port(&self) -> u16 {
        self.node.port
    }

    /// `rediss://user:password@127.0.0.1:port`.
    pub fn url(&self) -> String {
        self.url_with(ACL_USER, ACL_PASSWORD)
    }

    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("rediss://{user}:{password}@127.0.0.1:{}", self.node.port)
    }

    /// The server's folder (certificates live there; more can be made in it).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}
