//! A beat process's settings: the common sections of `celeriac` plus `[beat]` and the
//! `[[schedules]]` tables, read with the library's one loader and checked at start, so an
//! invalid schedule stops the beat in one line naming the schedule and its field.

use std::collections::HashSet;
use std::time::Duration;

use celeriac::schedule::{Schedule, ScheduleDef};
use celeriac::settings::{ProcessSettings, Settings, SettingsError, duration, invalid};
use serde::Deserialize;

/// Everything a beat process reads: [`Settings`] (through `Deref`) and its own sections.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BeatProcessSettings {
    /// The sections every process reads, loaded by [`Settings::from_layers`].
    #[serde(skip)]
    pub common: Settings,
    pub beat: BeatSettings,
    /// Periodic schedules (`[[schedules]]` tables), loaded into Redis by `celeriac-beat` at
    /// start; for the names it defines, the file wins over the API.
    pub schedules: Vec<ScheduleDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BeatSettings {
    /// How late an occurrence may fire and still count as on time; older ones were missed
    /// and follow the schedule's misfire policy (`skip` or `once`). `misfire_grace = "5s"`,
    /// or `misfire_grace_secs = 5`.
    #[serde(deserialize_with = "duration")]
    pub misfire_grace: Duration,
}

impl Default for BeatSettings {
    fn default() -> Self {
        Self {
            misfire_grace: Duration::from_secs(5),
        }
    }
}

impl ProcessSettings for BeatProcessSettings {
    fn common_mut(&mut self) -> &mut Settings {
        &mut self.common
    }

    /// Checks what the types alone cannot, in the beat's own sections.
    fn validate(&self) -> Result<(), SettingsError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.beat.misfire_grace) {
            return Err(invalid("beat.misfire_grace", "must be 1s to 1h"));
        }
        self.parsed_schedules()?;
        Ok(())
    }
}

impl BeatProcessSettings {
    /// The settings' schedules, validated; the error names the schedule and its field
    /// (`schedules.nightly.cron`).
    pub fn parsed_schedules(&self) -> Result<Vec<Schedule>, SettingsError> {
        let mut seen = HashSet::new();
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
}

impl std::ops::Deref for BeatProcessSettings {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.common
    }
}

impl std::ops::DerefMut for BeatProcessSettings {
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
    use crate::settings::tests::layers;

    fn load(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<BeatProcessSettings, SettingsError> {
        BeatProcessSettings::from_layers(&layers(files, vars)?)
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
        assert_eq!(nightly.misfire, celeriac::schedule::Misfire::Skip);
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
    fn schedule_args_named_like_old_duration_keys_are_left_alone() {
        let base = "[[schedules]]\nname = \"t\"\ntask = \"echo\"\nevery = \"1m\"\nargs = { wait_secs = 3 }\n";
        let s = load(&[("base.toml", base)], &[]).unwrap();
        assert_eq!(s.schedules[0].args["wait_secs"], 3);
    }

    #[test]
    fn the_misfire_grace_is_a_duration_within_bounds() {
        let s = load(&[], &[("CELERIAC__BEAT__MISFIRE_GRACE_SECS", "9")]).unwrap();
        assert_eq!(s.beat.misfire_grace, Duration::from_secs(9));
        let s = load(&[("base.toml", "[beat]\nmisfire_grace = \"2m\"\n")], &[]).unwrap();
        assert_eq!(s.beat.misfire_grace, Duration::from_secs(120));
        let e = load(&[], &[("CELERIAC__BEAT__MISFIRE_GRACE", "2h")]).unwrap_err();
        assert_eq!(e.setting, "beat.misfire_grace");
    }

    #[test]
    fn the_shipped_config_files_load_with_the_example_schedule() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
        let dev = BeatProcessSettings::from_layers(&Layers::load_from(dir, "development", &HashMap::new()).unwrap()).unwrap();
        let example = dev.parsed_schedules().unwrap();
        assert_eq!(example[0].name(), "heartbeat-noop");
        assert_eq!(example[0].def.options.expires, Some(25.0));
        BeatProcessSettings::from_layers(&Layers::load_from(dir, "production", &HashMap::new()).unwrap()).unwrap();
    }
}
