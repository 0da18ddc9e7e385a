//! The `[redis]` section, which every process reads: where the broker is and the namespace
//! of its keys. The URL may hold a password, so it is only ever shown through [`redact_url`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// The topology and where it is: `redis://[user:password@]host:port/db` (`rediss://` for
    /// TLS) for one node, `redis+cluster://[user:password@]h1:p1,h2:p2` for a Cluster,
    /// `redis+sentinel://[user:password@]s1:p1,s2:p2/master_name` for Sentinel (each also
    /// `rediss+…`). See `celeriac::broker::RedisTarget`.
    pub url: String,
    /// Prefix of every key, so several deployments (or tests) share one Redis.
    pub namespace: String,
    /// PEM file of the CA that signed the servers' certificates (`rediss` only; without it,
    /// the usual web roots are trusted).
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for servers that ask for one.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// What an answer promises (docs/design.md, "Durability"): `async` (Redis's own
    /// replication: an accepted task can be lost with a master that dies before its replica
    /// copied it) or `replicated` (an enqueue and the storing of an outcome wait until at
    /// least one replica has them, `WAIT 1`, before they are answered).
    pub durability: Durability,
    /// How long `replicated` waits for a replica before the enqueue answers 503 (the task
    /// is on the master and may still run) or the worker stores the outcome again.
    #[serde(deserialize_with = "super::duration")]
    pub replica_timeout: Duration,
}

/// See [`RedisSettings::durability`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Async,
    Replicated,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("durability", &self.durability)
            .field("replica_timeout", &self.replica_timeout)
            .finish()
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            namespace: "celeriac".into(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            durability: Durability::Async,
            replica_timeout: Duration::from_secs(2),
        }
    }
}

/// The URL with any password replaced, for logs: the user and password before the host
/// (`redis://user:secret@host`), and a `pass` or `password` query parameter (which
/// `redis+unix://` URLs use).
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut shown = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://<credentials>@{}", &base[..scheme], &base[at + 1..]),
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if ["pass", "password"].contains(&name.to_ascii_lowercase().as_str()) => {
                    format!("{name}=<redacted>")
                }
                _ => param.to_owned(),
            })
            .collect();
        shown = format!("{shown}?{}", params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_every_form_of_password() {
        assert_eq!(redact_url("redis://u:hunter2@host:6379/0"), "redis://<credentials>@host:6379/0");
        assert_eq!(redact_url("rediss://:p@ss@host"), "rediss://<credentials>@host");
        assert_eq!(
            redact_url("redis+unix:///tmp/r.sock?db=1&pass=hunter2"),
            "redis+unix:///tmp/r.sock?db=1&pass=<redacted>"
        );
        assert_eq!(
            redact_url("unix:///tmp/r.sock?password=hunter2"),
            "unix:///tmp/r.sock?password=<redacted>"
        );
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn debug_output_redacts_the_url() {
        let settings = RedisSettings {
            url: "redis://user:hunter2@localhost:6379".into(),
            ..Default::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && shown.contains("localhost"), "{shown}");
    }
}
