//! Periodic schedules: what a user writes (a `[[schedules]]` table in the settings or the body
//! of `PUT /schedules/{name}`), validated into a [`Schedule`] that knows its occurrences.
//! Parsing, validation, next-occurrence and misfire planning are pure functions, unit-tested
//! here; storage is in `broker::schedules`, firing in the worker crate's `beat`.
//!
//! A fired occurrence's task id is `TaskId::derived(queue, "<name>@<occurrence ms>")`, so any
//! number of beat processes may fire it: the enqueue script refuses an existing id, and the
//! occurrence runs once. The seed holds no digest of the definition on purpose: while beats
//! switch from an old definition to a new one (within a tick), one occurrence must still give
//! one task, and a redefinition only fires occurrences after it (see `broker::schedules`), so
//! old and new definitions never claim the same occurrence.

mod plan;
mod timing;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use plan::{MAX_FIRES_PER_TICK, Plan, plan};
pub use timing::{Timing, parse_cron, parse_every, parse_zone};

use crate::builtin::FieldError;
use crate::call::{CallOptions, ObjectFields, read_object};
use crate::id::{QueueName, TaskId};
use crate::task::TaskOptions;

/// Longest schedule name.
pub const MAX_NAME_LEN: usize = 128;
/// Longest `expires` accepted, in seconds.
const MAX_EXPIRES_SECS: f64 = 366.0 * 86_400.0;

/// What to do with occurrences missed while no beat was running (or the schedule's queue
/// refused them for longer than the misfire grace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Misfire {
    /// Run the most recent missed occurrence once, then go on (Celery beat's behaviour).
    #[default]
    Once,
    /// Drop the missed occurrences; wait for the next one.
    Skip,
}

/// Options given to every task a schedule fires: an expiry relative to the firing, and the
/// task options of any call ([`TaskOptions`], at the same level in JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduleOptions {
    /// Seconds after firing when the task must no longer start (it is then `REVOKED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
    /// How the task may fail: retries, time limits, backoff.
    #[serde(flatten)]
    pub options: TaskOptions,
}

impl ObjectFields for ScheduleOptions {
    const EXPECTING: &'static str = "schedule options";

    fn fields() -> Vec<&'static str> {
        let mut fields = vec!["expires"];
        fields.extend_from_slice(TaskOptions::FIELDS);
        fields
    }

    fn take_field<'de, A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "expires" => self.expires = map.next_value()?,
            other => return self.options.take_field(other, map),
        }
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for ScheduleOptions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_object(deserializer, ScheduleOptions::default())
    }
}

/// A schedule as written: a `[[schedules]]` table in the settings, and the JSON kept in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDef {
    pub name: String,
    pub task: String,
    #[serde(default)]
    pub args: Value,
    /// The queue; without it, the task's route. Always set in Redis (resolved when stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// An interval such as `"30s"`; give this or `cron`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// A cron expression of 5 fields, or 6 with seconds first; give this or `every`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone of `cron` (default `UTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default)]
    pub misfire: Misfire,
    #[serde(default, skip_serializing_if = "ScheduleOptions::is_empty")]
    pub options: ScheduleOptions,
}

impl ScheduleOptions {
    fn is_empty(&self) -> bool {
        *self == ScheduleOptions::default()
    }
}

/// A validated schedule: its definition and the instants it fires at.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub def: ScheduleDef,
    pub queue: Option<QueueName>,
    pub timing: Timing,
}

impl Schedule {
    /// Validates `def`; the error names the field at fault (`cron`, `timezone`, `options.expires`...).
    pub fn parse(def: ScheduleDef) -> Result<Self, FieldError> {
        validate_name(&def.name).map_err(|m| FieldError::new("name", m))?;
        if def.task.trim().is_empty() {
            return Err(FieldError::new("task", "must name a task"));
        }
        let queue = def
            .queue
            .as_deref()
            .map(QueueName::parse)
            .transpose()
            .map_err(|m| FieldError::new("queue", m))?;
        let timing = match (&def.every, &def.cron) {
            (Some(_), Some(_)) => return Err(FieldError::new("cron", "give `every` or `cron`, not both")),
            (None, None) => return Err(FieldError::new("every", "give `every` (an interval) or `cron`")),
            (Some(every), None) => {
                if def.timezone.is_some() {
                    return Err(FieldError::new(
                        "timezone",
                        "applies to cron schedules only; intervals count elapsed time",
                    ));
                }
                Timing::Every {
                    ms: parse_every(every).map_err(|m| FieldError::new("every", m))?,
                }
            }
            (None, Some(cron)) => {
                let timing = Timing::Cron {
                    cron: Box::new(parse_cron(cron).map_err(|m| FieldError::new("cron", m))?),
                    zone: parse_zone(def.timezone.as_deref().unwrap_or("UTC")).map_err(|m| FieldError::new("timezone", m))?,
                };
                if timing.next_after(chrono::Utc::now().timestamp_millis()).is_none() {
                    return Err(FieldError::new(
                        "cron",
                        format!("{cron:?} never matches a date (such as February 30)"),
                    ));
                }
                timing
            }
        };
        def.options
            .options
            .validate()
            .map_err(|(field, message)| FieldError::new(format!("options.{field}"), message))?;
        if let Some(secs) = def.options.expires
            && !(secs.is_finite() && secs > 0.0 && secs <= MAX_EXPIRES_SECS)
        {
            return Err(FieldError::new(
                "options.expires",
                "must be a number of seconds above 0 and at most a year",
            ));
        }
        Ok(Self { def, queue, timing })
    }

    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The call a firing of this schedule makes (its queue, once resolved, and its options),
    /// for [`crate::catalog::Catalog::prepare`].
    pub fn call(&self) -> CallOptions {
        CallOptions {
            queue: self.def.queue.clone(),
            expires: self.def.options.expires.and_then(serde_json::Number::from_f64).map(Value::Number),
            options: self.def.options.options.clone(),
            ..Default::default()
        }
    }

    /// The id of the task fired for the occurrence at `occurrence_ms` on `queue`: the same in
    /// every beat process and at every retry, so the occurrence is enqueued once.
    pub fn occurrence_id(&self, queue: &QueueName, occurrence_ms: i64) -> TaskId {
        occurrence_id(&self.def.name, queue, occurrence_ms)
    }
}

/// See [`Schedule::occurrence_id`].
pub fn occurrence_id(name: &str, queue: &QueueName, occurrence_ms: i64) -> TaskId {
    TaskId::derived(queue, &format!("{name}@{occurrence_ms}"))
}

/// Schedule names: 1 to 128 characters of letters, digits, `_`, `.`, `-` (they appear in URLs
/// and Redis keys; `@` and braces are kept out of the id seed and the hash tag).
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(ok) {
        return Err(format!(
            "schedule name {name:?} must be 1 to {MAX_NAME_LEN} characters of A-Z, a-z, 0-9, '_', '.', '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(extra: Value) -> ScheduleDef {
        let mut v = json!({"name": "nightly", "task": "noop"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    fn field(extra: Value) -> String {
        Schedule::parse(def(extra)).unwrap_err().field
    }

    #[test]
    fn a_schedule_needs_exactly_one_timing() {
        assert!(Schedule::parse(def(json!({"every": "30s"}))).is_ok());
        assert!(Schedule::parse(def(json!({"cron": "30 2 * * *", "timezone": "Europe/Paris"}))).is_ok());
        assert_eq!(field(json!({})), "every");
        assert_eq!(field(json!({"every": "1m", "cron": "* * * * *"})), "cron");
        assert_eq!(field(json!({"every": "1m", "timezone": "UTC"})), "timezone");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        assert_eq!(field(json!({"every": "soon"})), "every");
        assert_eq!(field(json!({"cron": "* * *"})), "cron");
        assert_eq!(field(json!({"cron": "0 0 30 2 *"})), "cron");
        assert!(Schedule::parse(def(json!({"cron": "0 0 29 2 *"}))).is_ok(), "leap days do come");
        assert_eq!(field(json!({"cron": "* * * * *", "timezone": "Nowhere/Else"})), "timezone");
        assert_eq!(field(json!({"every": "1m", "queue": "{bad}"})), "queue");
        assert_eq!(field(json!({"every": "1m", "options": {"expires": 0}})), "options.expires");
        assert_eq!(field(json!({"every": "1m", "options": {"time_limit": -1}})), "options.time_limit");
        assert_eq!(field(json!({"every": "1m", "task": " "})), "task");
        assert_eq!(field(json!({"every": "1m", "name": "a b"})), "name");
        assert_eq!(field(json!({"every": "1m", "name": "a@b"})), "name");
    }

    #[test]
    fn occurrence_ids_are_deterministic_per_schedule_queue_and_instant() {
        let q = QueueName::parse("default").unwrap();
        assert_eq!(occurrence_id("a", &q, 1000), occurrence_id("a", &q, 1000));
        assert_ne!(occurrence_id("a", &q, 1000), occurrence_id("a", &q, 2000));
        assert_ne!(occurrence_id("a", &q, 1000), occurrence_id("b", &q, 1000));
        assert_eq!(occurrence_id("a", &q, 1000).queue(), &q);
    }

    #[test]
    fn definitions_round_trip_through_json_in_a_stable_form() {
        let d = def(json!({"every": "5m", "args": {"b": 1, "a": [1, 2]}, "misfire": "skip", "options": {"max_retries": 2}}));
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<ScheduleDef>(&text).unwrap(), d);
        assert_eq!(
            serde_json::to_string(&serde_json::from_str::<ScheduleDef>(&text).unwrap()).unwrap(),
            text
        );
        assert!(serde_json::from_value::<ScheduleDef>(json!({"name": "x", "task": "t", "misfire": "burst"})).is_err());
    }
}
