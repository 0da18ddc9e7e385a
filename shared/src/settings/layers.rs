//! The one settings loader of every process: `config/base.toml`, then
//! `config/{environment}.toml`, then `CELERIAC__SECTION__KEY` environment variables (and
//! `REDIS_URL`, as in the Celery guides), later layers winning. Each process then reads the
//! sections it needs with [`Layers::sections`] into its own type, so the library knows the
//! common sections only.
//!
//! Two rules hold for every section. A duration key may be written `lease = "30s"` or, as
//! before, `lease_secs = 30`: in each layer `<name>_secs` is read as `<name>` (both in one layer
//! is refused), so an old file or variable still overrides a new one below it. And a top-level
//! name outside [`SECTIONS`] is refused, so a misspelt `[htpp]` stops every process.

use std::collections::HashMap;
use std::path::Path;

use config::{Config, ConfigError, Environment, File, FileFormat, Map, Source, Value, ValueKind};
use serde::de::DeserializeOwned;

use super::{SettingsError, invalid};

/// Every top-level name the project's processes read: the common sections and each binary's
/// own (`http`, `auth` for the gateway; `worker`, `smtp` for workers; `beat`, `schedules` for
/// the beat). A new section is added here.
pub const SECTIONS: &[&str] = &[
    "environment",
    "redis",
    "tasks",
    "reports",
    "log",
    "archive",
    "webhooks",
    "telemetry",
    "http",
    "auth",
    "pull",
    "worker",
    "smtp",
    "beat",
    "schedules",
    "remote_tasks",
];

/// The suffix of the older spelling of a duration key.
const SECS_SUFFIX: &str = "_secs";

/// The layered settings, not yet read into types. Holds secrets, so it is never printed.
pub struct Layers {
    config: Config,
    /// Setting -> its older name, for each setting some layer wrote with `_secs`, so an
    /// error about `worker.lease` also tells where `worker.lease_secs` went.
    older_names: HashMap<String, String>,
}

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layers").finish_non_exhaustive()
    }
}

impl Layers {
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
        let mut env_vars: HashMap<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("CELERIAC__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(url) = vars.get("REDIS_URL") {
            env_vars.entry("CELERIAC__REDIS__URL".into()).or_insert_with(|| url.clone());
        }
        let file = |name: &str| File::from(dir.join(name)).format(FileFormat::Toml).required(false);
        // No `try_parsing`: values stay text until a section's type reads them (the config
        // crate turns "7" into a number on demand), so a token of digits stays a token.
        let variables = Environment::with_prefix("CELERIAC")
            .prefix_separator("__")
            .separator("__")
            .source(Some(env_vars));
        let mut older_names = HashMap::new();
        let config = Config::builder()
            .add_source(layer(file("base.toml"), &mut older_names)?)
            .add_source(layer(file(&format!("{environment}.toml")), &mut older_names)?)
            .add_source(layer(variables, &mut older_names)?)
            .set_override("environment", environment)
            .map_err(|e| invalid("environment", e.to_string()))?
            .build()
            .map_err(named)?;
        let top = config.collect().map_err(named)?;
        if let Some(unknown) = top.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            return Err(invalid(
                unknown,
                format!("unknown section; the sections are {}", SECTIONS.join(", ")),
            ));
        }
        Ok(Self { config, older_names })
    }

    /// The sections `T` has fields for, read into it; the other sections are left to the
    /// processes that read them. A value that does not fit names its setting.
    pub fn sections<T: DeserializeOwned>(&self) -> Result<T, SettingsError> {
        self.config.clone().try_deserialize().map_err(|e| {
            let mut error = named(e);
            if let Some(older) = self.older_names.get(&error.setting) {
                error.message.push_str(&format!(" (`{older}` is its older name)"));
            }
            error
        })
    }
}

/// One layer, collected on its own so its `<name>_secs` keys can be renamed before the
/// layers are merged.
#[derive(Debug, Clone)]
struct Layer(Map<String, Value>);

impl Source for Layer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        Ok(self.0.clone())
    }
}

/// Collects `source` as a tree (dotted variable names become tables) and renames each
/// section's `<name>_secs` keys to `<name>`, noting each in `older_names`.
fn layer(source: impl Source + Send + Sync + 'static, older_names: &mut HashMap<String, String>) -> Result<Layer, SettingsError> {
    let tree = Config::builder().add_source(source).build().map_err(named)?;
    let mut sections = tree.collect().map_err(named)?;
    for (section, value) in sections.iter_mut() {
        let ValueKind::Table(table) = &mut value.kind else { continue };
        let old: Vec<String> = table.keys().filter(|k| k.ends_with(SECS_SUFFIX)).cloned().collect();
        for key in old {
            let name = key[..key.len() - SECS_SUFFIX.len()].to_owned();
            if table.contains_key(&name) {
                return Err(invalid(
                    &format!("{section}.{name}"),
                    format!("set either {section}.{name} or {section}.{key} (its older name), not both"),
                ));
            }
            let value = table.remove(&key).expect("listed");
            older_names.insert(format!("{section}.{name}"), format!("{section}.{key}"));
            table.insert(name, value);
        }
    }
    Ok(Layer(sections))
}

/// A config error as a [`SettingsError`] naming the setting it is about.
fn named(e: ConfigError) -> SettingsError {
    let text = e.to_string();
    let setting = text
        .split("for key `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .unwrap_or("config")
        .to_owned();
    SettingsError { setting, message: text }
}
