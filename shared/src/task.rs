//! The task model: per-task options, what a worker and a producer know about a task type, the
//! error a handler returns, which says whether another attempt could succeed, and how a run
//! ended (`Verdict`). Plain data: the trait a task type implements, whose run takes a context
//! holding the broker, is in `handler.rs`, so that the broker can use this model without a
//! loop back to itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::QueueName;

/// Most tags one task may carry.
pub const MAX_TAGS: usize = 16;
/// Longest tag name, in characters (letters, digits, `_`, `-`, `.`).
pub const MAX_TAG_NAME: usize = 64;
/// Longest tag value, in characters.
pub const MAX_TAG_VALUE: usize = 256;

/// Options a task type sets as defaults and a caller may override per call.
/// `None` means "not set here": the next layer (task type, then worker defaults) decides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskOptions {
    /// Retries after the first attempt fails with a retryable error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 1000))]
    pub max_retries: Option<u32>,
    /// Hard limit in seconds: the task is stopped and fails with `TimeLimitExceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub time_limit: Option<f64>,
    /// Soft limit in seconds: the task's cancellation token fires so it can clean up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub soft_time_limit: Option<f64>,
    /// Delay before the first retry, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub retry_delay: Option<f64>,
    /// Double the delay at every retry (exponential backoff); otherwise it stays fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<bool>,
    /// Ceiling of the delay, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(exclusive_minimum = 0, maximum = 604800))]
    pub retry_delay_max: Option<f64>,
    /// Spread retries at random between half the delay and the whole delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_jitter: Option<bool>,
    /// Priority within the queue, 0 (the default) to 9: a higher one is handed out first,
    /// equal ones in arrival order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9))]
    pub priority: Option<u8>,
    /// Seconds during which a call of the same task with the same `unique_key` (else the same
    /// name and arguments) creates no second task: it answers with the existing one's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.001, maximum = 31622400))]
    pub unique_for: Option<f64>,
    /// What makes calls duplicates of each other, instead of the name and arguments (read only
    /// with `unique_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub unique_key: Option<String>,
    /// How long the uniqueness holds, within `unique_for`: until the task `started`, until it
    /// `finished` (the default), or for the whole `period` (a throttle: one task per key per
    /// period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^(started|finished|period)$"))]
    pub unique_until: Option<String>,
    /// Seconds a debounced call waits for the next call of its burst (`debounce_key`, else
    /// the task's name): while the task of the burst has not started, a call replaces its
    /// arguments and options and pushes its start back to this long after the call, so a
    /// burst of calls runs one task, with the last call's arguments, once the calls stop.
    /// Not with `unique_for`, nor for a workflow member; a call with an `Idempotency-Key` is
    /// not debounced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0.001, maximum = 604800))]
    pub debounce: Option<f64>,
    /// What makes calls one burst, instead of the task's name (read only with `debounce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub debounce_key: Option<String>,
    /// The key whose own limits this task counts against when its queue has key limits
    /// (`key_rate`, `key_concurrency`: each key gets them for itself), such as a customer id;
    /// absent, the task's name is its key (limits per task type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200, pattern = "^[^\n]+$"))]
    pub limit_key: Option<String>,
    /// What the task is about, for searching history: a small map of strings such as
    /// `{"user_id": "42", "tenant": "acme"}` (at most 16, names up to 64 characters of
    /// letters, digits, `_-.`, values up to 256). Kept in the record and the archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// A URL notified once the task reaches a final state (`SUCCESS`, `FAILURE`, `REVOKED`): a
    /// signed `POST` of the task's record (see the webhooks section of the docs), retried with
    /// backoff while the receiver fails; each delivery is logged in the record's `webhooks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 8, max_length = 2048, pattern = r"^https?://[A-Za-z0-9.:\[\]_-]+(/[!-~]*)?$")
    )]
    pub callback_url: Option<String>,
}

/// The values of `unique_until`.
pub const UNIQUE_UNTIL: [&str; 3] = ["started", "finished", "period"];

/// The highest task priority.
pub const MAX_PRIORITY: u8 = 9;

impl TaskOptions {
    /// The field names, as sent in JSON; [`TaskOptions::take_field`] reads each.
    pub const FIELDS: &'static [&'static str] = &[
        "max_retries",
        "time_limit",
        "soft_time_limit",
        "retry_delay",
        "retry_backoff",
        "retry_delay_max",
        "retry_jitter",
        "priority",
        "unique_for",
        "unique_key",
        "unique_until",
        "debounce",
        "debounce_key",
        "limit_key",
        "tags",
        "callback_url",
    ];

    /// Reads the value of `key` from `map` into its field, when `key` is one of these options;
    /// `Ok(false)` leaves the value unread for the caller. This lets an object that carries
    /// these options beside its own fields (`POST /tasks`, call options, schedule options)
    /// read them without a second declaration, and with errors that name the field (serde's
    /// `flatten` loses the field's name from type errors). [`TaskOptions::FIELDS`] must list
    /// every key matched here; a unit test checks both against the struct.
    pub fn take_field<'de, A: serde::de::MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "max_retries" => self.max_retries = map.next_value()?,
            "time_limit" => self.time_limit = map.next_value()?,
            "soft_time_limit" => self.soft_time_limit = map.next_value()?,
            "retry_delay" => self.retry_delay = map.next_value()?,
            "retry_backoff" => self.retry_backoff = map.next_value()?,
            "retry_delay_max" => self.retry_delay_max = map.next_value()?,
            "retry_jitter" => self.retry_jitter = map.next_value()?,
            "priority" => self.priority = map.next_value()?,
            "unique_for" => self.unique_for = map.next_value()?,
            "unique_key" => self.unique_key = map.next_value()?,
            "unique_until" => self.unique_until = map.next_value()?,
            "debounce" => self.debounce = map.next_value()?,
            "debounce_key" => self.debounce_key = map.next_value()?,
            "limit_key" => self.limit_key = map.next_value()?,
            "tags" => self.tags = map.next_value()?,
            "callback_url" => self.callback_url = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// These options, with gaps filled from `defaults`.
    pub fn or(&self, defaults: &TaskOptions) -> TaskOptions {
        TaskOptions {
            max_retries: self.max_retries.or(defaults.max_retries),
            time_limit: self.time_limit.or(defaults.time_limit),
            soft_time_limit: self.soft_time_limit.or(defaults.soft_time_limit),
            retry_delay: self.retry_delay.or(defaults.retry_delay),
            retry_backoff: self.retry_backoff.or(defaults.retry_backoff),
            retry_delay_max: self.retry_delay_max.or(defaults.retry_delay_max),
            retry_jitter: self.retry_jitter.or(defaults.retry_jitter),
            priority: self.priority.or(defaults.priority),
            unique_for: self.unique_for.or(defaults.unique_for),
            unique_key: self.unique_key.clone().or_else(|| defaults.unique_key.clone()),
            unique_until: self.unique_until.clone().or_else(|| defaults.unique_until.clone()),
            debounce: self.debounce.or(defaults.debounce),
            debounce_key: self.debounce_key.clone().or_else(|| defaults.debounce_key.clone()),
            limit_key: self.limit_key.clone().or_else(|| defaults.limit_key.clone()),
            tags: self.tags.clone().or_else(|| defaults.tags.clone()),
            callback_url: self.callback_url.clone().or_else(|| defaults.callback_url.clone()),
        }
    }

    /// What applies when neither the call nor the task type says otherwise.
    pub fn worker_defaults() -> TaskOptions {
        TaskOptions {
            max_retries: Some(3),
            time_limit: None,
            soft_time_limit: None,
            retry_delay: Some(1.0),
            retry_backoff: Some(true),
            retry_delay_max: Some(600.0),
            retry_jitter: Some(true),
            priority: None,
            unique_for: None,
            unique_key: None,
            unique_until: None,
            debounce: None,
            debounce_key: None,
            limit_key: None,
            tags: None,
            callback_url: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == TaskOptions::default()
    }

    /// Checks the values a caller may send; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let limits = [
            ("time_limit", self.time_limit),
            ("soft_time_limit", self.soft_time_limit),
            ("retry_delay", self.retry_delay),
            ("retry_delay_max", self.retry_delay_max),
        ];
        for (field, value) in limits {
            if let Some(v) = value
                && !(v.is_finite() && v > 0.0 && v <= 7.0 * 86_400.0)
            {
                return Err((field.into(), "must be a number of seconds above 0 and at most 7 days".into()));
            }
        }
        if let Some(n) = self.max_retries
            && n > 1000
        {
            return Err(("max_retries".into(), "must be at most 1000".into()));
        }
        if let Some(p) = self.priority
            && p > MAX_PRIORITY
        {
            return Err(("priority".into(), format!("must be from 0 to {MAX_PRIORITY}")));
        }
        if let Some(secs) = self.unique_for
            && !(0.001..=366.0 * 86_400.0).contains(&secs)
        {
            return Err(("unique_for".into(), "must be a number of seconds above 0 and at most a year".into()));
        }
        if let Some(key) = &self.unique_key
            && (key.is_empty() || key.len() > 200)
        {
            return Err(("unique_key".into(), "must be 1 to 200 characters".into()));
        }
        if let Some(until) = &self.unique_until
            && !UNIQUE_UNTIL.contains(&until.as_str())
        {
            return Err(("unique_until".into(), "must be started, finished or period".into()));
        }
        if let Some(secs) = self.debounce {
            if !(0.001..=7.0 * 86_400.0).contains(&secs) {
                return Err(("debounce".into(), "must be a number of seconds above 0 and at most 7 days".into()));
            }
            if self.unique_for.is_some() {
                return Err(("debounce".into(), "cannot be combined with unique_for".into()));
            }
        }
        if let Some(key) = &self.debounce_key
            && (key.is_empty() || key.len() > 200)
        {
            return Err(("debounce_key".into(), "must be 1 to 200 characters".into()));
        }
        if let Some(key) = &self.limit_key
            && (key.is_empty() || key.len() > 200 || key.contains('\n'))
        {
            return Err(("limit_key".into(), "must be 1 to 200 characters, without a line break".into()));
        }
        if let Some(tags) = &self.tags {
            validate_tags(tags)?;
        }
        if let Some(url) = &self.callback_url
            && !crate::http_url::is_http_url(url)
        {
            return Err(("callback_url".into(), crate::http_url::HTTP_URL_EXPECTED.into()));
        }
        Ok(())
    }
}

/// Checks a task's tags: bounded in count and length, names of plain characters (they are
/// searched as `tag=name:value`). The error names the field (`tags`, or `tags.<name>`).
pub fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    if tags.len() > MAX_TAGS {
        return Err(("tags".into(), format!("at most {MAX_TAGS} tags, got {}", tags.len())));
    }
    for (name, value) in tags {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if name.is_empty() || name.chars().count() > MAX_TAG_NAME || !name.chars().all(plain) {
            return Err((
                "tags".into(),
                format!("tag name {name:?} must be 1 to {MAX_TAG_NAME} letters, digits, '_', '-' or '.'"),
            ));
        }
        if value.chars().count() > MAX_TAG_VALUE || value.contains('\0') {
            return Err((
                format!("tags.{name}"),
                format!("must be at most {MAX_TAG_VALUE} characters, without NUL"),
            ));
        }
    }
    Ok(())
}

/// What a worker and a producer need to know about a task type.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskSpec {
    pub name: String,
    /// The queue it goes to unless the caller or a route says otherwise.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub queue: QueueName,
    #[serde(default)]
    pub options: TaskOptions,
}

/// A failed attempt: what kind of failure, a message for humans, and whether trying again
/// could help (a timeout: yes; a malformed address: no).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{kind}: {message}")]
pub struct TaskError {
    pub kind: String,
    pub message: String,
    pub retryable: bool,
    /// When the failure asked for the next attempt to wait this many seconds (an HTTP
    /// endpoint's `Retry-After`), the retry waits that long instead of the backoff delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl TaskError {
    /// A failure that another attempt may cure (network errors, timeouts, 5xx).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: "Error".into(),
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    /// A failure no retry can cure (bad input, a refused recipient).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: "Error".into(),
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }

    pub fn with_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Asks the retry, if there is one, to wait `secs` seconds instead of the backoff delay.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

/// How a run ended, as stored (`Broker::finish`): the state it leaves its task in.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// `SUCCESS` with the result as JSON text.
    Success(String),
    /// `FAILURE` for good: the task joins the dead letters.
    Failure(TaskError),
    /// `RETRY`: run again at `due_ms`.
    Retry { error: TaskError, due_ms: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every option, set: a new field that is not set here fails to compile (no `..`).
    fn all_set() -> TaskOptions {
        TaskOptions {
            max_retries: Some(5),
            time_limit: Some(10.0),
            soft_time_limit: Some(9.0),
            retry_delay: Some(2.0),
            retry_backoff: Some(false),
            retry_delay_max: Some(60.0),
            retry_jitter: Some(false),
            priority: Some(7),
            unique_for: Some(60.0),
            unique_key: Some("k".into()),
            unique_until: Some("started".into()),
            debounce: Some(2.5),
            debounce_key: Some("user-42".into()),
            limit_key: Some("customer-7".into()),
            tags: Some([("user_id".to_owned(), "42".to_owned())].into()),
            callback_url: Some("https://app.example.com/hooks/celeriac".into()),
        }
    }

    #[test]
    fn a_callback_url_must_be_an_http_url_naming_its_field() {
        let with = |url: &str| TaskOptions {
            callback_url: Some(url.into()),
            ..TaskOptions::default()
        };
        for good in [
            "http://127.0.0.1:8080/done",
            "https://app.example.com",
            "http://[::1]:9/h?x=1&y=%20",
        ] {
            assert!(with(good).validate().is_ok(), "{good:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        for bad in [
            "",
            "ftp://example.com",
            "https://",
            "https:///path",
            "http://a b",
            "http://é.example",
            "http://x/\u{85}",
            &long,
        ] {
            assert_eq!(with(bad).validate().unwrap_err().0, "callback_url", "{bad:?}");
        }
    }

    #[test]
    fn a_bad_limit_key_is_refused_naming_its_field() {
        let with = |key: &str| TaskOptions {
            limit_key: Some(key.into()),
            ..TaskOptions::default()
        };
        assert!(with("customer-7").validate().is_ok());
        for bad in ["", "a\nb", &"k".repeat(201)] {
            assert_eq!(with(bad).validate().unwrap_err().0, "limit_key", "{bad:?}");
        }
    }

    #[test]
    fn a_bad_debounce_is_refused_naming_its_field() {
        let with = |debounce: Option<f64>, key: Option<&str>, unique_for: Option<f64>| TaskOptions {
            debounce,
            debounce_key: key.map(str::to_owned),
            unique_for,
            ..TaskOptions::default()
        };
        assert!(with(Some(0.5), Some("k"), None).validate().is_ok());
        for bad in [0.0, -1.0, f64::NAN, 8.0 * 86_400.0] {
            assert_eq!(with(Some(bad), None, None).validate().unwrap_err().0, "debounce", "{bad}");
        }
        let both = with(Some(1.0), None, Some(60.0)).validate().unwrap_err();
        assert_eq!(both, ("debounce".into(), "cannot be combined with unique_for".into()));
        assert_eq!(with(Some(1.0), Some(""), None).validate().unwrap_err().0, "debounce_key");
        assert_eq!(
            with(Some(1.0), Some(&"k".repeat(201)), None).validate().unwrap_err().0,
            "debounce_key"
        );
    }

    #[test]
    fn fields_lists_every_option_and_take_field_reads_each() {
        let all = all_set();
        let json = serde_json::to_value(&all).unwrap();
        let names: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut listed = TaskOptions::FIELDS.to_vec();
        listed.sort_unstable();
        let mut names_sorted = names.clone();
        names_sorted.sort_unstable();
        assert_eq!(listed, names_sorted, "TaskOptions::FIELDS must list every field");
        let read = crate::call::read_task_options(&json.to_string()).unwrap();
        assert_eq!(read, all, "take_field must read every field");
    }
}

#[cfg(test)]
mod tag_tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tags_are_bounded_and_the_error_names_the_field() {
        assert!(validate_tags(&tags(&[("user_id", "42"), ("tenant", "acme")])).is_ok());
        let many: BTreeMap<String, String> = (0..=MAX_TAGS).map(|i| (format!("t{i}"), "x".into())).collect();
        assert_eq!(validate_tags(&many).unwrap_err().0, "tags");
        assert_eq!(validate_tags(&tags(&[("bad name", "x")])).unwrap_err().0, "tags");
        assert_eq!(validate_tags(&tags(&[("", "x")])).unwrap_err().0, "tags");
        let long = "v".repeat(MAX_TAG_VALUE + 1);
        assert_eq!(validate_tags(&tags(&[("user_id", &long)])).unwrap_err().0, "tags.user_id");
    }
}
