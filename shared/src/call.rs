//! A call: what a producer asks of one task beyond its name and arguments (where it goes,
//! when it may run, how it may fail), declared once here and read the same way by every
//! producer: `POST /tasks` (at the top level of its body), `POST /emails` and `POST /reports`
//! (under `options`), schedules, and library callers. [`crate::catalog::Catalog::prepare`]
//! turns a call into the task to store; see `docs/design.md` ("One enqueue path").

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::builtin::FieldError;
use crate::task::TaskOptions;

/// Longest countdown, eta or expiry accepted, from now.
pub const MAX_DELAY_SECS: f64 = 366.0 * 86_400.0;

/// Per-call options: where and when the task runs, and how it may fail ([`TaskOptions`],
/// at the same level in JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallOptions {
    /// Queue to use instead of the task's route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// On a sharded queue, the shard is picked by this key's hash instead of in turn, so the
    /// tasks of one key stay in one shard, in the order they were enqueued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// Run no sooner than this many seconds from now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 31622400))]
    pub countdown: Option<f64>,
    /// Run no sooner than this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "2026-11-24T21:00:00Z", format = DateTime))]
    pub eta: Option<String>,
    /// Do not start after this: seconds from now, or an RFC 3339 time. An expired task is
    /// `REVOKED` and never runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::expires))]
    pub expires: Option<Value>,
    /// How the task may fail: retries, time limits, backoff.
    #[serde(flatten)]
    pub options: TaskOptions,
}

impl CallOptions {
    /// When the task may first run, ms since the epoch, from `countdown` or `eta`.
    pub fn due_ms(&self, now_ms: i64) -> Result<Option<i64>, FieldError> {
        match (self.countdown, &self.eta) {
            (Some(_), Some(_)) => Err(FieldError::new("eta", "give countdown or eta, not both")),
            (Some(secs), None) => {
                if !(secs.is_finite() && (0.0..=MAX_DELAY_SECS).contains(&secs)) {
                    return Err(FieldError::new("countdown", "must be a number of seconds from 0 to one year"));
                }
                Ok(Some(now_ms + (secs * 1000.0) as i64))
            }
            (None, Some(eta)) => {
                let at = parse_time(eta).ok_or_else(|| FieldError::new("eta", "must be an RFC 3339 time such as 2026-11-24T21:00:00Z"))?;
                if (at - now_ms) as f64 > MAX_DELAY_SECS * 1000.0 {
                    return Err(FieldError::new("eta", "must be within one year"));
                }
                Ok(Some(at))
            }
            (None, None) => Ok(None),
        }
    }

    /// When the task must no longer start, ms since the epoch, from `expires`.
    pub fn expires_ms(&self, now_ms: i64) -> Result<Option<i64>, FieldError> {
        let bad = || FieldError::new("expires", "must be seconds from now (above 0) or an RFC 3339 time");
        match &self.expires {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let secs = n
                    .as_f64()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_DELAY_SECS)
                    .ok_or_else(bad)?;
                Ok(Some(now_ms + (secs * 1000.0) as i64))
            }
            Some(Value::String(s)) => parse_time(s).map(Some).ok_or_else(bad),
            Some(_) => Err(bad()),
        }
    }
}

impl ObjectFields for CallOptions {
    const EXPECTING: &'static str = "call options";

    fn fields() -> Vec<&'static str> {
        let mut fields = vec!["queue", "partition_key", "countdown", "eta", "expires"];
        fields.extend_from_slice(TaskOptions::FIELDS);
        fields
    }

    fn take_field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "queue" => self.queue = map.next_value()?,
            "partition_key" => self.partition_key = map.next_value()?,
            "countdown" => self.countdown = map.next_value()?,
            "eta" => self.eta = map.next_value()?,
            "expires" => self.expires = map.next_value()?,
            other => return self.options.take_field(other, map),
        }
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for CallOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_object(deserializer, CallOptions::default())
    }
}

fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// An object read key by key, for types that carry options beside their own fields.
/// This is `#[serde(flatten)]` with `deny_unknown_fields`, which serde does not combine, and
/// with type errors that keep the field's name (serde_path_to_error sees every key; under
/// `flatten` it sees none).
pub trait ObjectFields: Sized {
    /// What the object is, for error messages.
    const EXPECTING: &'static str;

    /// Every key [`ObjectFields::take_field`] reads.
    fn fields() -> Vec<&'static str>;

    /// Reads the value of `key` from `map` into its field; `Ok(false)` for a key it does not
    /// know (its value then stays unread).
    fn take_field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Reads a JSON object into `start` key by key; an unknown key is refused, naming it and the
/// known ones.
pub fn read_object<'de, D: Deserializer<'de>, T: ObjectFields>(deserializer: D, start: T) -> Result<T, D::Error> {
    struct ObjectVisitor<T>(T);

    impl<'de, T: ObjectFields> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "an object of {}", T::EXPECTING)
        }

        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<T, A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if !self.0.take_field(&key, &mut map)? {
                    // Refused while reading the key's value, so the error's path names the key.
                    map.next_value_seed(Unknown {
                        key: &key,
                        known: T::fields(),
                    })?;
                }
            }
            Ok(self.0)
        }
    }

    deserializer.deserialize_map(ObjectVisitor(start))
}

/// The value of an unknown key: refused, naming the key and the known ones.
struct Unknown<'k> {
    key: &'k str,
    known: Vec<&'static str>,
}

impl<'de> de::DeserializeSeed<'de> for Unknown<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        let known: Vec<String> = self.known.iter().map(|f| format!("`{f}`")).collect();
        Err(de::Error::custom(format_args!(
            "unknown field `{}`, expected one of {}",
            self.key,
            known.join(", ")
        )))
    }
}

/// Reads [`TaskOptions`] through [`TaskOptions::take_field`] (for its unit test).
#[cfg(test)]
pub(crate) fn read_task_options(json: &str) -> Result<TaskOptions, serde_json::Error> {
    struct Only(TaskOptions);
    impl ObjectFields for Only {
        const EXPECTING: &'static str = "task options";
        fn fields() -> Vec<&'static str> {
            TaskOptions::FIELDS.to_vec()
        }
        fn take_field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
            self.0.take_field(key, map)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    read_object(&mut de, Only(TaskOptions::default())).map(|o| o.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of_error(json: &str) -> (String, String) {
        let mut de = serde_json::Deserializer::from_str(json);
        let e = serde_path_to_error::deserialize::<_, CallOptions>(&mut de).unwrap_err();
        (e.path().to_string(), e.inner().to_string())
    }

    #[test]
    fn reads_placement_timing_and_task_options_at_one_level() {
        let call: CallOptions = serde_json::from_str(r#"{"queue": "q", "countdown": 5, "max_retries": 2, "retry_jitter": false}"#).unwrap();
        assert_eq!(call.queue.as_deref(), Some("q"));
        assert_eq!(call.countdown, Some(5.0));
        assert_eq!(call.options.max_retries, Some(2));
        assert_eq!(call.options.retry_jitter, Some(false));
        assert_eq!(
            serde_json::to_value(&call).unwrap(),
            serde_json::json!({"queue": "q", "countdown": 5.0, "max_retries": 2, "retry_jitter": false})
        );
    }

    #[test]
    fn type_errors_name_their_field_and_unknown_fields_are_refused() {
        assert_eq!(field_of_error(r#"{"max_retries": "x"}"#).0, "max_retries");
        assert_eq!(field_of_error(r#"{"countdown": "x"}"#).0, "countdown");
        let (path, message) = field_of_error(r#"{"prio": 1}"#);
        assert_eq!(path, "prio");
        assert!(message.starts_with("unknown field `prio`, expected one of `queue`"), "{message}");
    }

    #[test]
    fn timing_is_checked_and_named() {
        let call = |json: &str| serde_json::from_str::<CallOptions>(json).unwrap();
        assert_eq!(call(r#"{"countdown": 2}"#).due_ms(1000).unwrap(), Some(3000));
        assert_eq!(call(r#"{"countdown": -1}"#).due_ms(0).unwrap_err().field, "countdown");
        assert_eq!(
            call(r#"{"countdown": 1, "eta": "2026-01-01T00:00:00Z"}"#)
                .due_ms(0)
                .unwrap_err()
                .field,
            "eta"
        );
        assert_eq!(call(r#"{"expires": 0}"#).expires_ms(0).unwrap_err().field, "expires");
        assert_eq!(call(r#"{"expires": true}"#).expires_ms(0).unwrap_err().field, "expires");
        assert_eq!(call(r#"{"expires": 1.5}"#).expires_ms(0).unwrap(), Some(1500));
    }
}
