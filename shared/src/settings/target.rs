//! Where Redis is: one `[redis]` URL (plus optional TLS files) names a single node, a Cluster
//! or a Sentinel set. Parsed and checked once (at settings validation), so a bad URL or a
//! missing certificate file is reported with the setting's name before anything connects.
//!
//! | URL | topology |
//! |---|---|
//! | `redis://[user:pass@]host:port[/db]`, `rediss://…` | one node (TLS with `rediss`) |
//! | `redis+cluster://[user:pass@]h1:p1,h2:p2`, `rediss+cluster://…` | a Cluster, from seed nodes |
//! | `redis+sentinel://[user:pass@]s1:p1,s2:p2/master_name[/db]`, `rediss+sentinel://…` | Sentinel |
//!
//! The user and password are the data nodes' (an ACL user); sentinels are asked without them.
//! With `rediss`, every connection (sentinels included) is TLS, verified against `ca_file`
//! when it is set (else the bundled web roots), with `client_cert`/`client_key` for mTLS.

use std::path::{Path, PathBuf};

use redis::{ClientTlsConfig, TlsCertificates};

/// The TLS files of `[redis]`: paths, read when the target is built.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// A setting that cannot be used, and why (`setting` is its name in `[redis]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    pub setting: &'static str,
    pub message: String,
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

impl std::error::Error for TargetError {}

fn url_error(message: impl Into<String>) -> TargetError {
    TargetError {
        setting: "redis.url",
        message: message.into(),
    }
}

/// The nodes to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One node, as a `redis://` or `rediss://` URL the `redis` crate parses.
    Single(String),
    /// Seed nodes of a Cluster (`host:port`); the rest is discovered.
    Cluster(Vec<(String, u16)>),
    /// Sentinel nodes and the name of the master they watch.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master: String,
        db: i64,
    },
}

/// A parsed `[redis]` target: the topology, TLS and the ACL credentials.
#[derive(Clone)]
pub struct RedisTarget {
    pub topology: Topology,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The CA and client certificate, read from the files (`None`: none given).
    pub(crate) certs: Option<TlsCertificates>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("topology", &self.topology)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("certs", &self.certs.is_some())
            .finish()
    }
}

impl RedisTarget {
    /// Parses the URL and reads the TLS files; every error names the setting at fault.
    pub fn parse(url: &str, files: &TlsFiles) -> Result<Self, TargetError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| url_error("not a Redis URL (no scheme://)"))?;
        let (tls, kind) = match scheme {
            "redis" => (false, None),
            "rediss" => (true, None),
            "redis+cluster" => (false, Some(true)),
            "rediss+cluster" => (true, Some(true)),
            "redis+sentinel" => (false, Some(false)),
            "rediss+sentinel" => (true, Some(false)),
            other => {
                return Err(url_error(format!(
                    "unknown scheme {other:?} (redis, rediss, redis+cluster, rediss+cluster, redis+sentinel, rediss+sentinel)"
                )));
            }
        };
        let certs = read_certs(files)?;
        if certs.is_some() && !tls {
            return Err(TargetError {
                setting: "redis.ca_file",
                message: "TLS files are set but the URL is not rediss:// (or rediss+cluster://, rediss+sentinel://)".into(),
            });
        }
        let (userinfo, hosts_and_path) = match rest.rsplit_once('@') {
            Some((userinfo, tail)) => (Some(userinfo), tail),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(user)?;
                let pass = percent_decode(pass)?;
                ((!user.is_empty()).then_some(user), (!pass.is_empty()).then_some(pass))
            }
        };
        let topology = match kind {
            None => {
                redis::Client::open(url).map_err(|e| url_error(format!("not a Redis URL ({e})")))?;
                Topology::Single(url.to_owned())
            }
            Some(true) => {
                let hosts = hosts_and_path.trim_end_matches('/');
                if hosts.contains('/') {
                    return Err(url_error("a cluster URL takes no path (every node has one database, 0)"));
                }
                Topology::Cluster(parse_hosts(hosts, 6379)?)
            }
            Some(false) => {
                let (hosts, path) = hosts_and_path
                    .split_once('/')
                    .ok_or_else(|| url_error("a sentinel URL names the master: redis+sentinel://s1:26379,s2:26379/master_name"))?;
                let mut parts = path.trim_end_matches('/').split('/');
                let master = parts.next().unwrap_or_default().to_owned();
                if master.is_empty() {
                    return Err(url_error(
                        "a sentinel URL names the master: redis+sentinel://s1:26379,s2:26379/master_name",
                    ));
                }
                let db = match parts.next() {
                    None => 0,
                    Some(db) => db.parse().map_err(|_| url_error(format!("database {db:?} is not a number")))?,
                };
                Topology::Sentinel {
                    sentinels: parse_hosts(hosts, 26379)?,
                    master,
                    db,
                }
            }
        };
        Ok(Self {
            topology,
            tls,
            username,
            password,
            certs,
        })
    }

    /// The target `[redis]` names (its URL and TLS files).
    pub fn from_settings(settings: &super::redis::RedisSettings) -> Result<Self, TargetError> {
        let files = TlsFiles {
            ca_file: settings.ca_file.clone(),
            client_cert: settings.client_cert.clone(),
            client_key: settings.client_key.clone(),
        };
        Self::parse(&settings.url, &files)
    }

    /// A URL for one node of this target (TLS scheme and credentials kept), for a plain client.
    pub(crate) fn node_url(&self, host: &str, port: u16, db: i64) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
        format!("{scheme}://{host}:{port}/{db}")
    }

    /// A plain client for one node, with this target's credentials and certificates.
    pub(crate) fn node_client(&self, url: &str) -> redis::RedisResult<redis::Client> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(url)?;
        let mut redis_info = info.redis_settings().clone();
        if let Some(user) = &self.username {
            redis_info = redis_info.set_username(user);
        }
        if let Some(pass) = &self.password {
            redis_info = redis_info.set_password(pass);
        }
        info = info.set_redis_settings(redis_info);
        match &self.certs {
            Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
            None => redis::Client::open(info),
        }
    }
}

fn parse_hosts(list: &str, default_port: u16) -> Result<Vec<(String, u16)>, TargetError> {
    let mut hosts = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(url_error("an empty host in the node list"));
        }
        let (host, port) = if let Some(bracketed) = item.strip_prefix('[') {
            let (host, tail) = bracketed.split_once(']').ok_or_else(|| url_error(format!("bad host {item:?}")))?;
            (host, tail.strip_prefix(':'))
        } else {
            match item.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (item, None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p.parse().map_err(|_| url_error(format!("bad port in {item:?}")))?,
        };
        if host.is_empty() {
            return Err(url_error(format!("no host in {item:?}")));
        }
        hosts.push((host.to_owned(), port));
    }
    Ok(hosts)
}

fn percent_decode(text: &str) -> Result<String, TargetError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| url_error("bad %-escape in the credentials"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| url_error("credentials are not UTF-8"))
}

fn read_pem(path: &Path, setting: &'static str, what: &str) -> Result<Vec<u8>, TargetError> {
    let bytes = std::fs::read(path).map_err(|e| TargetError {
        setting,
        message: format!("cannot read {}: {e}", path.display()),
    })?;
    // "-----BEGIN CERTIFICATE-----"; a key's label varies ("PRIVATE KEY", "EC PRIVATE KEY"...).
    if !String::from_utf8_lossy(&bytes).contains(&format!("{what}-----")) {
        return Err(TargetError {
            setting,
            message: format!("{} holds no PEM {what}", path.display()),
        });
    }
    Ok(bytes)
}

fn read_certs(files: &TlsFiles) -> Result<Option<TlsCertificates>, TargetError> {
    let root_cert = files
        .ca_file
        .as_deref()
        .map(|p| read_pem(p, "redis.ca_file", "CERTIFICATE"))
        .transpose()?;
    let client_tls = match (&files.client_cert, &files.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read_pem(cert, "redis.client_cert", "CERTIFICATE")?,
            client_key: read_pem(key, "redis.client_key", "PRIVATE KEY")?,
        }),
        (Some(_), None) => {
            return Err(TargetError {
                setting: "redis.client_key",
                message: "client_cert is set without client_key".into(),
            });
        }
        (None, Some(_)) => {
            return Err(TargetError {
                setting: "redis.client_cert",
                message: "client_key is set without client_cert".into(),
            });
        }
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    Ok(Some(TlsCertificates { client_tls, root_cert }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<RedisTarget, TargetError> {
        RedisTarget::parse(url, &TlsFiles::default())
    }

    #[test]
    fn each_scheme_selects_its_topology() {
        let single = parse("rediss://u:p@h:7000/2").unwrap();
        assert_eq!(single.topology, Topology::Single("rediss://u:p@h:7000/2".into()));
        assert!(single.tls);
        let cluster = parse("redis+cluster://app:s%40cret@a:7000,b,[::1]:7002").unwrap();
        assert_eq!(
            cluster.topology,
            Topology::Cluster(vec![("a".into(), 7000), ("b".into(), 6379), ("::1".into(), 7002)])
        );
        assert_eq!(
            (cluster.username.as_deref(), cluster.password.as_deref()),
            (Some("app"), Some("s@cret"))
        );
        assert!(!cluster.tls);
        let sentinel = parse("rediss+sentinel://:pw@s1:26380,s2/mymaster/3").unwrap();
        assert_eq!(
            sentinel.topology,
            Topology::Sentinel {
                sentinels: vec![("s1".into(), 26380), ("s2".into(), 26379)],
                master: "mymaster".into(),
                db: 3
            }
        );
        assert_eq!(
            (sentinel.username, sentinel.password.as_deref(), sentinel.tls),
            (None, Some("pw"), true)
        );
    }

    #[test]
    fn bad_urls_and_files_name_the_setting() {
        for url in [
            "http://h",
            "h:6379",
            "redis+cluster://",
            "redis+cluster://a:x",
            "redis+sentinel://s1",
            "redis+sentinel://s1/",
            "redis+cluster://a/0",
        ] {
            assert_eq!(parse(url).unwrap_err().setting, "redis.url", "{url}");
        }
        let missing = TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let e = RedisTarget::parse("rediss://h", &missing).unwrap_err();
        assert_eq!(e.setting, "redis.ca_file");
        assert!(e.message.contains("/nonexistent/ca.pem"), "{e}");
        let half = TlsFiles {
            client_cert: Some("/x".into()),
            ..TlsFiles::default()
        };
        assert_eq!(RedisTarget::parse("rediss://h", &half).unwrap_err().setting, "redis.client_key");
    }
}
