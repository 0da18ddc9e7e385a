//! The gateway's settings: the common sections of `celeriac` plus `[http]` (address, body
//! limit, longest wait) and `[auth]` (bearer tokens and their roles), read with the library's
//! one loader and checked at start, so a bad value stops the gateway in one line naming the
//! setting. Tokens are secrets: their `Debug` shows `[REDACTED]`, and errors name the token,
//! never its value.

use std::net::SocketAddr;
use std::time::Duration;

use celeriac::settings::{ProcessSettings, Settings, SettingsError, comma_list, duration, invalid};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Everything the gateway reads: [`Settings`] (through `Deref`) and its own sections.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// The sections every process reads, loaded by [`Settings::from_layers`].
    #[serde(skip)]
    pub common: Settings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub pull: PullSettings,
}

/// Workers over HTTP (`POST /queues/{queue}/claim` and `/runs/{token}/...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullSettings {
    /// How long a pull worker's lease on its tasks lasts without a heartbeat or a claim
    /// (`lease = "30s"`, or `lease_secs = 30`); past it, its tasks go back to their queue.
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// Most tasks one claim may take (`?max=`).
    pub max_claim: usize,
}

impl Default for PullSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            max_claim: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Longest `?wait=` a client may ask for (`max_wait = "60s"`, or `max_wait_secs = 60`).
    #[serde(deserialize_with = "duration")]
    pub max_wait: Duration,
}

/// Bearer tokens of the gateway. Without any, the gateway only starts on a loopback address
/// (and then lets every request in); see `config/base.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Named tokens, each with a role.
    pub tokens: Vec<ApiToken>,
    /// More `admin` tokens, e.g. `CELERIAC__AUTH__ADMIN_TOKENS=tok1,tok2` (comma-separated).
    #[serde(deserialize_with = "comma_list")]
    pub admin_tokens: Vec<SecretString>,
    /// More `producer` tokens, e.g. `CELERIAC__AUTH__PRODUCER_TOKENS=tok1,tok2`.
    #[serde(deserialize_with = "comma_list")]
    pub producer_tokens: Vec<SecretString>,
}

/// One bearer token: who holds it and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it, for operators (never the secret itself).
    pub name: String,
    pub token: SecretString,
    pub role: Role,
    /// The only queues it may use (enqueue into, read, steer); empty: every queue.
    #[serde(default)]
    pub queues: Vec<celeriac::QueueName>,
    /// The only task types it may use; empty: every task type.
    #[serde(default)]
    pub tasks: Vec<String>,
}

/// What a token may do. `admin` includes everything a `producer` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Enqueue tasks and read them (and their workflows and report files).
    Producer,
    /// Everything: also revoke and retry, metrics, and the admin routes.
    Admin,
}

/// The shortest token accepted: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: ([127, 0, 0, 1], 8000).into(),
            body_limit_bytes: 1024 * 1024,
            max_wait: Duration::from_secs(60),
        }
    }
}

impl AuthSettings {
    /// Every token with its role and name: `tokens`, then the comma-separated lists (named
    /// `admin-1`, `producer-1`, ... by position).
    pub fn all(&self) -> Vec<ApiToken> {
        let listed = |list: &[SecretString], role: Role, prefix: &str| {
            list.iter()
                .map(|t| t.expose_secret().trim())
                .filter(|t| !t.is_empty())
                .enumerate()
                .map(|(i, t)| ApiToken {
                    name: format!("{prefix}-{}", i + 1),
                    token: t.into(),
                    role,
                    queues: Vec::new(),
                    tasks: Vec::new(),
                })
                .collect::<Vec<_>>()
        };
        let mut all = self.tokens.clone();
        all.extend(listed(&self.admin_tokens, Role::Admin, "admin"));
        all.extend(listed(&self.producer_tokens, Role::Producer, "producer"));
        all
    }

    pub fn is_empty(&self) -> bool {
        self.all().is_empty()
    }
}

impl ProcessSettings for GatewaySettings {
    fn common_mut(&mut self) -> &mut Settings {
        &mut self.common
    }

    /// Checks what the types alone cannot, in the gateway's own sections.
    fn validate(&self) -> Result<(), SettingsError> {
        if self.http.body_limit_bytes == 0 {
            return Err(invalid("http.body_limit_bytes", "must be above 0"));
        }
        if self.pull.lease < Duration::from_secs(1) {
            return Err(invalid("pull.lease", "must be at least 1s"));
        }
        if !(1..=1000).contains(&self.pull.max_claim) {
            return Err(invalid("pull.max_claim", "must be from 1 to 1000"));
        }
        let tokens = self.auth.all();
        for (i, t) in tokens.iter().enumerate() {
            let secret = t.token.expose_secret();
            if secret.len() < MIN_TOKEN_LEN || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "auth.tokens",
                    format!(
                        "token {:?} must be at least {MIN_TOKEN_LEN} visible ASCII characters, without spaces",
                        t.name
                    ),
                ));
            }
            if tokens[..i].iter().any(|other| other.token.expose_secret() == secret) {
                return Err(invalid("auth.tokens", format!("token {:?} is listed twice", t.name)));
            }
        }
        Ok(())
    }
}

impl std::ops::Deref for GatewaySettings {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.common
    }
}

impl std::ops::DerefMut for GatewaySettings {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.common
    }
}

#[cfg(test)]
mod tests {
    use celeriac::settings::Layers;
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<GatewaySettings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        GatewaySettings::from_layers(&Layers::load_from(dir.path(), "test", &vars(env))?)
    }

    fn exposed(tokens: Vec<ApiToken>) -> Vec<(String, String, Role)> {
        tokens
            .into_iter()
            .map(|t| (t.name, t.token.expose_secret().to_owned(), t.role))
            .collect()
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let e = load(&[("base.toml", "[http]\nbind = \"not an address\"\n")], &[]).unwrap_err();
        assert!(e.to_string().contains("http.bind"), "{e}");
        assert_eq!(e.setting, "http.bind");
        let e = load(&[], &[("CELERIAC__HTTP__BODY_LIMIT_BYTES", "0")]).unwrap_err();
        assert_eq!(e.setting, "http.body_limit_bytes");
        let e = load(&[], &[("CELERIAC__HTTP__MAX_WAIT_SECS", "a minute")]).unwrap_err();
        assert_eq!(e.setting, "http.max_wait", "{e}");
        let e = load(&[], &[("CELERIAC__REDIS__URL", "http://nope")]).unwrap_err();
        assert_eq!(e.setting, "redis.url");
    }

    #[test]
    fn the_longest_wait_is_a_duration_under_either_name() {
        let s = load(&[("base.toml", "[http]\nmax_wait_secs = 90\n")], &[]).unwrap();
        assert_eq!(s.http.max_wait, Duration::from_secs(90));
        let s = load(&[], &[("CELERIAC__HTTP__MAX_WAIT", "2m")]).unwrap();
        assert_eq!(s.http.max_wait, Duration::from_secs(120));
    }

    #[test]
    fn the_workers_sections_are_not_the_gateways_business() {
        let s = load(&[], &[("CELERIAC__WORKER__CONCURRENCY", "0"), ("CELERIAC__SMTP__SECURITY", "ssl")]).unwrap();
        assert_eq!(s.http.bind, HttpSettings::default().bind);
    }

    #[test]
    fn tokens_come_from_the_file_and_from_comma_separated_variables() {
        let s = load(
            &[(
                "base.toml",
                "[auth]\ntokens = [{ name = \"ci\", token = \"ci-token-0123456789\", role = \"producer\" }]\n",
            )],
            &[
                ("CELERIAC__AUTH__ADMIN_TOKENS", "admin-token-0123456789, 12345678901234567890"),
                ("CELERIAC__AUTH__PRODUCER_TOKENS", "producer-token-0123456789"),
            ],
        )
        .unwrap();
        assert_eq!(
            exposed(s.auth.all()),
            [
                ("ci".into(), "ci-token-0123456789".into(), Role::Producer),
                ("admin-1".into(), "admin-token-0123456789".into(), Role::Admin),
                ("admin-2".into(), "12345678901234567890".into(), Role::Admin),
                ("producer-1".into(), "producer-token-0123456789".into(), Role::Producer),
            ]
        );
    }

    #[test]
    fn a_token_of_digits_stays_a_token() {
        let s = load(&[], &[("CELERIAC__AUTH__ADMIN_TOKENS", "12345678901234567890123")]).unwrap();
        assert_eq!(
            exposed(s.auth.all()),
            [("admin-1".into(), "12345678901234567890123".into(), Role::Admin)]
        );
    }

    #[test]
    fn tokens_never_appear_in_debug_output() {
        let s = load(
            &[(
                "base.toml",
                "[[auth.tokens]]\nname = \"ci\"\ntoken = \"file-secret-0123456789\"\nrole = \"admin\"\n",
            )],
            &[
                ("CELERIAC__AUTH__ADMIN_TOKENS", "env-admin-secret-0123456789"),
                ("CELERIAC__AUTH__PRODUCER_TOKENS", "env-producer-secret-0123456789"),
            ],
        )
        .unwrap();
        assert_eq!(s.auth.all().len(), 3);
        let shown = format!("{s:?} {:?}", s.auth.all());
        assert!(!shown.contains("secret-"), "{shown}");
        assert!(
            shown.contains("ci") && shown.contains("admin-1") && shown.contains("producer-1"),
            "{shown}"
        );
    }

    #[test]
    fn the_shipped_config_files_load_with_tokens_from_the_environment() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
        let env = vars(&[
            ("CELERIAC__AUTH__ADMIN_TOKENS", "admin-token-0123456789"),
            ("CELERIAC__AUTH__PRODUCER_TOKENS", ""),
        ]);
        for environment in ["development", "production"] {
            let s = GatewaySettings::from_layers(&Layers::load_from(dir, environment, &env).unwrap()).unwrap();
            let roles: Vec<Role> = s.auth.all().iter().map(|t| t.role).collect();
            assert_eq!(roles, [Role::Admin], "{environment}");
        }
    }

    #[test]
    fn weak_or_repeated_tokens_are_refused() {
        let e = load(&[], &[("CELERIAC__AUTH__ADMIN_TOKENS", "short")]).unwrap_err();
        assert_eq!(e.setting, "auth.tokens");
        assert!(!e.to_string().contains("short"), "the message must not show the token: {e}");
        let e = load(
            &[],
            &[
                ("CELERIAC__AUTH__ADMIN_TOKENS", "same-token-0123456789"),
                ("CELERIAC__AUTH__PRODUCER_TOKENS", "same-token-0123456789"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.setting, "auth.tokens");
        let e = load(
            &[(
                "base.toml",
                "[auth]\ntokens = [{ name = \"x\", token = \"x-token-0123456789\", role = \"root\" }]\n",
            )],
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("auth"), "{e}");
    }
}
