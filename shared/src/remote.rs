//! Remote task types: a task whose code is an HTTP endpoint somewhere else (any language). The
//! type names the URL, the queue, a timeout per call, the secret that signs each call
//! ([`crate::signing`]), the largest answer read, and the retry policy. Declared in the
//! settings (`[remote_tasks.NAME]`, published by every gateway and worker at start) or through
//! the admin API (`PUT /task-types/{name}`); stored in Redis ([`crate::Broker::put_task_type`]),
//! where the gateway's catalogue and every worker read them, so they agree as they do on
//! built-in tasks. A worker runs one as an ordinary task (a slot of its concurrency, under its
//! lease and time limits): `celeriac-worker`'s `remote` module makes the call.

use serde::{Deserialize, Serialize};

use crate::http_url::{HTTP_URL_EXPECTED, is_http_url};
use crate::id::QueueName;
use crate::task::{TaskOptions, TaskSpec};

/// The default timeout of one call, in seconds.
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
/// The default largest answer read (1 MiB): a longer one fails the task (`AnswerTooLarge`).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// One remote task type, as stored (with its secret) and as declared in the settings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteTaskType {
    /// Set from the settings' table key or the URL's path; not read from a body.
    #[serde(default)]
    pub name: String,
    /// The queue its tasks go to (`default` unless set).
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Where each run is `POST`ed: an `http://` or `https://` URL (an `https://` endpoint's
    /// certificate must come from the web roots or the workers' `[worker] remote_ca_file`).
    pub url: String,
    /// Seconds one call may last before it is abandoned (a retryable `Timeout`).
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// The HMAC-SHA256 key of the `Celeriac-Signature` header (at least 16 characters).
    pub secret: String,
    /// The largest answer body read, in bytes.
    #[serde(default = "default_max_answer")]
    pub max_answer_bytes: usize,
    /// The retry policy and time limits of its tasks (a call may override them).
    #[serde(default)]
    pub options: TaskOptions,
}

fn default_queue() -> String {
    "default".into()
}

fn default_timeout() -> f64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_max_answer() -> usize {
    DEFAULT_MAX_ANSWER_BYTES
}

impl std::fmt::Debug for RemoteTaskType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTaskType")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("url", &self.url)
            .field("secret", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl RemoteTaskType {
    /// Checks every field; the error names the field at fault (relative to the type).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: &str| Err((field.to_owned(), message.to_owned()));
        let name_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
        if !(1..=100).contains(&self.name.len()) || !self.name.bytes().all(name_ok) {
            return fail("name", "must be 1 to 100 letters, digits, '_', '-' or '.'");
        }
        if crate::builtin::specs().iter().any(|s| s.name == self.name) {
            return fail("name", "is a built-in task's name");
        }
        QueueName::parse(&self.queue).map_err(|m| ("queue".to_owned(), m))?;
        if !is_http_url(&self.url) {
            return fail("url", HTTP_URL_EXPECTED);
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 3600.0) {
            return fail("timeout", "must be a number of seconds above 0 and at most 3600");
        }
        if self.secret.len() < 16 || self.secret.len() > 512 {
            return fail("secret", "must be 16 to 512 characters");
        }
        if !(1..=64 * 1024 * 1024).contains(&self.max_answer_bytes) {
            return fail("max_answer_bytes", "must be from 1 to 67108864");
        }
        self.options
            .validate()
            .map_err(|(field, message)| (format!("options.{field}"), message))
    }

    /// What the gateway's catalogue needs: name, queue, options.
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: self.name.clone(),
            queue: QueueName::parse(&self.queue).unwrap_or_else(|_| crate::id::fallback_queue()),
            options: self.options.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> RemoteTaskType {
        RemoteTaskType {
            name: "resize".into(),
            queue: "images".into(),
            url: "http://127.0.0.1:9/run".into(),
            timeout: 5.0,
            secret: "0123456789abcdef".into(),
            max_answer_bytes: 1000,
            options: TaskOptions::default(),
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(valid().validate(), Ok(()));
        let cases: Vec<(RemoteTaskType, &str)> = vec![
            (
                RemoteTaskType {
                    name: "a b".into(),
                    ..valid()
                },
                "name",
            ),
            (
                RemoteTaskType {
                    name: "send_email".into(),
                    ..valid()
                },
                "name",
            ),
            (
                RemoteTaskType {
                    queue: "bad queue".into(),
                    ..valid()
                },
                "queue",
            ),
            (
                RemoteTaskType {
                    url: "ftp://x".into(),
                    ..valid()
                },
                "url",
            ),
            (
                RemoteTaskType {
                    url: "http://".into(),
                    ..valid()
                },
                "url",
            ),
            (RemoteTaskType { timeout: 0.0, ..valid() }, "timeout"),
            (
                RemoteTaskType {
                    secret: "short".into(),
                    ..valid()
                },
                "secret",
            ),
            (
                RemoteTaskType {
                    max_answer_bytes: 0,
                    ..valid()
                },
                "max_answer_bytes",
            ),
            (
                RemoteTaskType {
                    options: TaskOptions {
                        max_retries: Some(5000),
                        ..Default::default()
                    },
                    ..valid()
                },
                "options.max_retries",
            ),
        ];
        for (ty, field) in cases {
            assert_eq!(ty.validate().unwrap_err().0, field, "{ty:?}");
        }
        assert!(
            !format!("{:?}", valid()).contains("0123456789abcdef"),
            "the secret is never printed"
        );
    }
}
