//! Settings, layered with the `config` crate: `config/base.toml`, then
//! `config/{environment}.toml`, then `CELERIAC__SECTION__KEY` environment variables (and
//! `REDIS_URL`, as in the Celery guides). A bad value stops the process at start with a
//! message naming the setting.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::id::QueueName;
use crate::schedule::{Schedule, ScheduleDef};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `development`, `test`, `production`...: picks `config/{environment}.toml`.
    pub environment: String,
    pub redis: RedisSettings,
    pub http: HttpSettings,
    pub worker: WorkerSettings,
    pub tasks: TaskSettings,
    pub smtp: SmtpSettings,
    pub reports: ReportSettings,
    pub log: LogSettings,
    pub beat: BeatSettings,
    /// Periodic schedules (`[[schedules]]` tables), loaded into Redis by `celeriac-beat` at
    /// start; for the names it defines, the file wins over the API.
    pub schedules: Vec<ScheduleDef>,
    pub auth: AuthSettings,
}

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
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Longest `?wait=` a client may ask for.
    pub max_wait_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Queues to consume when `--queues` is not given.
    pub queues: Vec<QueueName>,
    /// Tasks run at once when `--concurrency` is not given.
    pub concurrency: usize,
    /// Most tasks taken from Redis in one call (never more than free slots).
    pub batch_size: usize,
    /// How long a worker's lease on its tasks lasts without a heartbeat.
    pub lease_secs: u64,
    /// How long a stopping worker lets running tasks finish before putting them back.
    pub grace_secs: u64,
    /// Where a worker serves `/healthz` and `/readyz` (consuming), e.g. `0.0.0.0:9000`.
    pub health_bind: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSettings {
    /// How long finished records are kept.
    pub result_ttl_secs: u64,
    /// Task name -> queue, overriding a task type's default queue.
    pub routes: BTreeMap<String, QueueName>,
    /// Queue -> most pending tasks; enqueues beyond it are refused with 429.
    pub max_pending: BTreeMap<QueueName, u64>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `From:` of the e-mails `send_email` sends.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `none`, `starttls` or `tls`.
    pub security: String,
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("security", &self.security)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Where `generate_report` writes its files and the gateway serves them from.
    pub dir: PathBuf,
}

/// Bearer tokens of the gateway. Without any, the gateway only starts on a loopback address
/// (and then lets every request in); see `config/base.toml`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Named tokens, each with a role.
    pub tokens: Vec<ApiToken>,
    /// More `admin` tokens, e.g. `CELERIAC__AUTH__ADMIN_TOKENS=tok1,tok2` (comma-separated).
    pub admin_tokens: Vec<String>,
    /// More `producer` tokens, e.g. `CELERIAC__AUTH__PRODUCER_TOKENS=tok1,tok2`.
    pub producer_tokens: Vec<String>,
}

/// One bearer token: who holds it and what it may do.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// Who holds it, for operators (never the secret itself).
    pub name: String,
    pub token: String,
    pub role: Role,
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

impl AuthSettings {
    /// Every token with its role and name: `tokens`, then the comma-separated lists (named
    /// `admin-1`, `producer-1`, ... by position).
    pub fn all(&self) -> Vec<ApiToken> {
        let listed = |list: &[String], role: Role, prefix: &str| {
            list.iter()
                .map(|t| t.trim())
                .filter(|t| !t.is_empty())
                .enumerate()
                .map(|(i, t)| ApiToken {
                    name: format!("{prefix}-{}", i + 1),
                    token: t.to_owned(),
                    role,
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

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tokens: Vec<(String, Role)> = self.all().into_iter().map(|t| (t.name, t.role)).collect();
        f.debug_struct("AuthSettings").field("tokens", &tokens).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BeatSettings {
    /// How late an occurrence may fire and still count as on time; older ones were missed
    /// and follow the schedule's misfire policy (`skip` or `once`).
    pub misfire_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info,celeriac=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: "development".into(),
            redis: RedisSettings::default(),
            http: HttpSettings::default(),
            worker: WorkerSettings::default(),
            tasks: TaskSettings::default(),
            smtp: SmtpSettings::default(),
            reports: ReportSettings::default(),
            log: LogSettings::default(),
            beat: BeatSettings::default(),
            schedules: Vec::new(),
            auth: AuthSettings::default(),
        }
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
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: ([127, 0, 0, 1], 8000).into(),
            body_limit_bytes: 1024 * 1024,
            max_wait_secs: 60,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        let queues = ["emails", "reports", "default"]
            .map(|q| QueueName::parse(q).expect("valid"))
            .to_vec();
        Self {
            queues,
            concurrency: 16,
            batch_size: 128,
            lease_secs: 30,
            grace_secs: 30,
            health_bind: None,
        }
    }
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            result_ttl_secs: 86_400,
            routes: BTreeMap::new(),
            max_pending: BTreeMap::new(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1025,
            from: "Celeriac <celeriac@localhost>".into(),
            username: None,
            password: None,
            security: "none".into(),
            timeout_secs: 10,
        }
    }
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            dir: "data/reports".into(),
        }
    }
}

impl Default for BeatSettings {
    fn default() -> Self {
        Self { misfire_grace_secs: 5 }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// A setting that cannot be used, named.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct SettingsError {
    pub setting: String,
    pub message: String,
}

fn invalid(setting: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        setting: setting.into(),
        message: message.into(),
    }
}

impl Settings {
    /// Loads from `./config` (or `CELERIAC_CONFIG_DIR`) for the environment named by
    /// `CELERIAC_ENV` (default `development`), then the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        let dir = std::env::var("CELERIAC_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let environment = std::env::var("CELERIAC_ENV").unwrap_or_else(|_| "development".into());
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(Path::new(&dir), &environment, &vars)
    }

    /// Loads from `dir` for `environment`, with `vars` standing for the process environment.
    pub fn load_from(dir: &Path, environment: &str, vars: &HashMap<String, String>) -> Result<Self, SettingsError> {
        use config::{Config, Environment, File, FileFormat};
        let mut env_vars: HashMap<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("CELERIAC__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(url) = vars.get("REDIS_URL") {
            env_vars.entry("CELERIAC__REDIS__URL".into()).or_insert_with(|| url.clone());
        }
        let file = |name: &str| File::from(dir.join(name)).format(FileFormat::Toml).required(false);
        let built = Config::builder()
            .add_source(file("base.toml"))
            .add_source(file(&format!("{environment}.toml")))
            .set_override("environment", environment)
            .map_err(|e| invalid("environment", e.to_string()))?
            .add_source(
                Environment::with_prefix("CELERIAC")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("worker.queues")
                    .with_list_parse_key("auth.admin_tokens")
                    .with_list_parse_key("auth.producer_tokens")
                    .try_parsing(true)
                    .source(Some(env_vars)),
            )
            .build()
            .map_err(|e| invalid("config", e.to_string()))?;
        let settings: Settings = built.try_deserialize().map_err(|e| {
            let text = e.to_string();
            let setting = text
                .split("for key `")
                .nth(1)
                .and_then(|s| s.split('`').next())
                .unwrap_or("config")
                .to_owned();
            SettingsError { setting, message: text }
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        crate::broker::RedisTarget::from_settings(&self.redis).map_err(|e| invalid(e.setting, e.message))?;
        let ns = &self.redis.namespace;
        if ns.is_empty() || !ns.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')) {
            return Err(invalid("redis.namespace", "must be non-empty: letters, digits, '_', '.', '-', ':'"));
        }
        if self.http.body_limit_bytes == 0 {
            return Err(invalid("http.body_limit_bytes", "must be above 0"));
        }
        if self.worker.queues.is_empty() {
            return Err(invalid("worker.queues", "name at least one queue"));
        }
        if !(1..=10_000).contains(&self.worker.concurrency) {
            return Err(invalid("worker.concurrency", "must be 1 to 10000"));
        }
        if !(1..=1_000).contains(&self.worker.batch_size) {
            return Err(invalid("worker.batch_size", "must be 1 to 1000"));
        }
        if self.worker.lease_secs < 2 {
            return Err(invalid("worker.lease_secs", "must be at least 2"));
        }
        if self.tasks.result_ttl_secs == 0 {
            return Err(invalid("tasks.result_ttl_secs", "must be above 0"));
        }
        if !["none", "starttls", "tls"].contains(&self.smtp.security.as_str()) {
            return Err(invalid("smtp.security", "must be none, starttls or tls"));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(invalid("log.format", "must be text or json"));
        }
        if !(1..=3600).contains(&self.beat.misfire_grace_secs) {
            return Err(invalid("beat.misfire_grace_secs", "must be 1 to 3600"));
        }
        self.parsed_schedules()?;
        let tokens = self.auth.all();
        for (i, t) in tokens.iter().enumerate() {
            if t.token.len() < MIN_TOKEN_LEN || !t.token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "auth.tokens",
                    format!(
                        "token {:?} must be at least {MIN_TOKEN_LEN} visible ASCII characters, without spaces",
                        t.name
                    ),
                ));
            }
            if tokens[..i].iter().any(|other| other.token == t.token) {
                return Err(invalid("auth.tokens", format!("token {:?} is listed twice", t.name)));
            }
        }
        Ok(())
    }

    /// The settings' schedules, validated; the error names the schedule and its field
    /// (`schedules.nightly.cron`).
    pub fn parsed_schedules(&self) -> Result<Vec<Schedule>, SettingsError> {
        let mut seen = std::collections::HashSet::new();
        let mut parsed = Vec::with_capacity(self.schedules.len());
        for (i, def) in self.schedules.iter().enumerate() {
            let schedule = Schedule::parse(def.clone()).map_err(|e| match e.field.as_str() {
                "name" => invalid(&format!("schedules[{i}].name"), e.message),
                field => invalid(&format!("schedules.{}.{field}", def.name), e.message),
            })?;
            if !seen.insert(def.name.clone()) {
                return Err(invalid(&format!("schedules.{}", def.name), "is defined twice"));
            }
            parsed.push(schedule);
        }
        Ok(parsed)
    }

    pub fn result_ttl(&self) -> Duration {
        Duration::from_secs(self.tasks.result_ttl_secs)
    }
}

/// The URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://<credentials>@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let dir = tempfile_dir();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::load_from(&dir, "test", &vars)
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("celeriac-settings-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn layers_apply_in_order_base_then_environment_then_variables() {
        let s = load(
            &[
                ("base.toml", "[redis]\nnamespace = \"base\"\n[worker]\nconcurrency = 2\n"),
                ("test.toml", "[redis]\nnamespace = \"env\"\n"),
            ],
            &[("CELERIAC__WORKER__CONCURRENCY", "7"), ("CELERIAC__WORKER__QUEUES", "a,b")],
        )
        .unwrap();
        assert_eq!(s.redis.namespace, "env");
        assert_eq!(s.worker.concurrency, 7);
        assert_eq!(s.worker.queues.iter().map(|q| q.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(s.environment, "test");
    }

    #[test]
    fn redis_url_is_honoured_but_the_prefixed_variable_wins() {
        let s = load(&[], &[("REDIS_URL", "redis://10.0.0.1:6380")]).unwrap();
        assert_eq!(s.redis.url, "redis://10.0.0.1:6380");
        let s = load(&[], &[("REDIS_URL", "redis://a:1"), ("CELERIAC__REDIS__URL", "redis://b:2")]).unwrap();
        assert_eq!(s.redis.url, "redis://b:2");
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let e = load(&[], &[("CELERIAC__WORKER__CONCURRENCY", "0")]).unwrap_err();
        assert_eq!(e.setting, "worker.concurrency");
        let e = load(&[], &[("CELERIAC__REDIS__URL", "http://nope")]).unwrap_err();
        assert_eq!(e.setting, "redis.url");
        let e = load(&[("base.toml", "[http]\nbind = \"not an address\"\n")], &[]).unwrap_err();
        assert!(e.to_string().contains("http.bind"), "{e}");
        let e = load(&[], &[("CELERIAC__WORKER__QUEUES", "ok,{bad}")]).unwrap_err();
        assert!(e.to_string().contains("worker.queues"), "{e}");
    }

    #[test]
    fn schedules_come_from_tables_and_a_bad_one_is_named() {
        let base = "[[schedules]]\nname = \"tick\"\ntask = \"noop\"\nevery = \"30s\"\n\n\
                    [[schedules]]\nname = \"nightly\"\ntask = \"send_email\"\ncron = \"30 2 * * *\"\n\
                    timezone = \"Europe/Paris\"\nmisfire = \"skip\"\nargs = { to = \"a@example.com\", subject = \"S\", body = \"B\" }\n\
                    options = { expires = 600, max_retries = 1 }\n";
        let s = load(&[("base.toml", base)], &[]).unwrap();
        assert_eq!(s.schedules.len(), 2);
        let nightly = &s.schedules[1];
        assert_eq!(nightly.args["subject"], "S");
        assert_eq!(nightly.misfire, crate::schedule::Misfire::Skip);
        assert_eq!(nightly.options.expires, Some(600.0));
        assert_eq!(s.parsed_schedules().unwrap().len(), 2);

        let bad = "[[schedules]]\nname = \"nightly\"\ntask = \"noop\"\ncron = \"30 2 * *\"\n";
        let e = load(&[("base.toml", bad)], &[]).unwrap_err();
        assert_eq!(e.setting, "schedules.nightly.cron", "{e}");
        let bad = "[[schedules]]\nname = \"nightly\"\ntask = \"noop\"\ncron = \"* * * * *\"\ntimezone = \"Paris\"\n";
        assert_eq!(load(&[("base.toml", bad)], &[]).unwrap_err().setting, "schedules.nightly.timezone");
        let twice = format!("{base}[[schedules]]\nname = \"tick\"\ntask = \"noop\"\nevery = \"1m\"\n");
        assert_eq!(load(&[("base.toml", &twice)], &[]).unwrap_err().setting, "schedules.tick");
        let unknown = "[[schedules]]\nname = \"x\"\ntask = \"noop\"\nevery = \"1m\"\nevry = 1\n";
        assert!(load(&[("base.toml", unknown)], &[]).unwrap_err().to_string().contains("evry"));
    }

    #[test]
    fn the_shipped_config_files_load_with_the_example_schedule() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
        let dev = Settings::load_from(dir, "development", &HashMap::new()).unwrap();
        let example = dev.parsed_schedules().unwrap();
        assert_eq!(example[0].name(), "heartbeat-noop");
        assert_eq!(example[0].def.options.expires, Some(25.0));
        Settings::load_from(dir, "production", &HashMap::new()).unwrap();
    }

    #[test]
    fn passwords_never_appear_in_debug_output() {
        let s = load(
            &[],
            &[
                ("CELERIAC__REDIS__URL", "redis://user:hunter2@localhost:6379"),
                ("CELERIAC__SMTP__PASSWORD", "s3cret"),
            ],
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
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
        let all: Vec<(String, String, Role)> = s.auth.all().into_iter().map(|t| (t.name, t.token, t.role)).collect();
        assert_eq!(
            all,
            [
                ("ci".into(), "ci-token-0123456789".into(), Role::Producer),
                ("admin-1".into(), "admin-token-0123456789".into(), Role::Admin),
                ("admin-2".into(), "12345678901234567890".into(), Role::Admin),
                ("producer-1".into(), "producer-token-0123456789".into(), Role::Producer),
            ]
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
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("ci") && shown.contains("admin-1") && shown.contains("producer-1"),
            "{shown}"
        );
    }

    #[test]
    fn the_shipped_config_files_load_with_tokens_from_the_environment() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
        let vars: HashMap<String, String> = [
            ("CELERIAC__AUTH__ADMIN_TOKENS", "admin-token-0123456789"),
            ("CELERIAC__AUTH__PRODUCER_TOKENS", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for environment in ["development", "production"] {
            let s = Settings::load_from(dir, environment, &vars).unwrap();
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
