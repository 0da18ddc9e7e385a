//! The built-in task types' names, default queues and argument types. The gateway validates
//! requests against them and the worker decodes them, so both sides share one definition.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::QueueName;
use crate::task::{TaskOptions, TaskSpec};

pub const SEND_EMAIL: &str = "send_email";
pub const GENERATE_REPORT: &str = "generate_report";
pub const NOOP: &str = "noop";
pub const ECHO: &str = "echo";
pub const ADD: &str = "add";
pub const SLEEP: &str = "sleep";
pub const FAIL: &str = "fail";

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Arguments of `send_email`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendEmailArgs {
    #[cfg_attr(feature = "openapi", schema(example = "ada@example.com"))]
    pub to: String,
    #[cfg_attr(feature = "openapi", schema(example = "Welcome"))]
    pub subject: String,
    #[cfg_attr(feature = "openapi", schema(example = "Thanks for signing up."))]
    pub body: String,
}

impl SendEmailArgs {
    pub fn validate(&self) -> Result<(), FieldError> {
        if !is_email_address(&self.to) {
            return Err(FieldError::new("to", "must be an e-mail address such as ada@example.com"));
        }
        if self.subject.trim().is_empty() || self.subject.len() > 998 || self.subject.contains(['\r', '\n']) {
            return Err(FieldError::new("subject", "must be one line of 1 to 998 characters"));
        }
        if self.body.len() > 512 * 1024 {
            return Err(FieldError::new("body", "must be at most 512 KiB"));
        }
        Ok(())
    }
}

/// A bare `local@domain` address as lettre's [`lettre::Address`] reads it, the same parser the
/// worker's `send_email` uses, so the gateway accepts exactly what the worker can send to.
pub fn is_email_address(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

/// Report file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    #[default]
    Csv,
    Pdf,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Pdf => "pdf",
        }
    }
}

/// Arguments of `generate_report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GenerateReportArgs {
    #[cfg_attr(feature = "openapi", schema(example = "42"))]
    pub user_id: String,
    #[serde(default)]
    pub format: ReportFormat,
}

impl GenerateReportArgs {
    pub fn validate(&self) -> Result<(), FieldError> {
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if self.user_id.is_empty() || self.user_id.len() > 64 || !self.user_id.chars().all(ok) {
            return Err(FieldError::new(
                "user_id",
                "must be 1 to 64 characters of letters, digits, '_' or '-'",
            ));
        }
        Ok(())
    }
}

/// Arguments of `sleep`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    pub ms: u64,
    /// Hold the thread instead of yielding, as a CPU-bound handler does (for testing that
    /// such a task keeps its lease).
    #[serde(default)]
    pub blocking: bool,
}

/// Arguments of `fail`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailArgs {
    pub message: String,
    /// Retryable failure (default: permanent).
    #[serde(default)]
    pub retryable: bool,
}

fn spec(name: &str, queue: &str) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        queue: QueueName::parse(queue).expect("valid queue"),
        options: TaskOptions::default(),
    }
}

/// The built-in task types, with their default queues.
pub fn specs() -> Vec<TaskSpec> {
    let mut email = spec(SEND_EMAIL, "emails");
    email.options.max_retries = Some(3);
    vec![
        email,
        spec(GENERATE_REPORT, "reports"),
        spec(NOOP, "default"),
        spec(ECHO, "default"),
        spec(ADD, "default"),
        spec(SLEEP, "default"),
        spec(FAIL, "default"),
    ]
}

/// Checks the arguments of a built-in task; `Ok` for names that are not built in.
pub fn validate_args(task: &str, args: &Value) -> Result<(), FieldError> {
    fn decode<T: serde::de::DeserializeOwned>(args: &Value) -> Result<T, FieldError> {
        T::deserialize(args).map_err(|e| FieldError::new("args", e.to_string()))
    }
    match task {
        SEND_EMAIL => decode::<SendEmailArgs>(args)?
            .validate()
            .map_err(|e| FieldError::new(format!("args.{}", e.field), e.message)),
        GENERATE_REPORT => decode::<GenerateReportArgs>(args)?
            .validate()
            .map_err(|e| FieldError::new(format!("args.{}", e.field), e.message)),
        ADD => decode::<Vec<f64>>(args).map(drop),
        SLEEP => decode::<SleepArgs>(args).map(drop),
        FAIL => decode::<FailArgs>(args).map(drop),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn email_addresses() {
        for good in ["ada@example.com", "a.b+tag@sub.example.org", "x@localhost"] {
            assert!(is_email_address(good), "{good}");
        }
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@exa mple.com",
            "a..b@example.com",
            "ada@-x.com",
            "a@b@c",
        ] {
            assert!(!is_email_address(bad), "{bad}");
        }
    }

    #[test]
    fn argument_validation_names_the_field() {
        let e = validate_args(SEND_EMAIL, &json!({"to": "nope", "subject": "s", "body": "b"})).unwrap_err();
        assert_eq!(e.field, "args.to");
        let e = validate_args(ADD, &json!(["x"])).unwrap_err();
        assert_eq!(e.field, "args");
        assert!(validate_args(ADD, &json!([1, 2.5])).is_ok());
        assert!(validate_args("custom_task", &json!({"anything": 1})).is_ok());
    }
}
