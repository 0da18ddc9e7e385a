//! What can go wrong in a command, each kind with its exit code, printed as one line.
//!
//! Exit codes (also in `cli/README.md`), so scripts can tell a refusal from an outage:
//! - 0: done;
//! - 1: the gateway refused the request (a 4xx answer: unknown task, no such task, conflict...);
//! - 2: usage (bad flags or arguments, a purge not confirmed);
//! - 3: the gateway is unreachable or failed (no answer, a 5xx answer, a broken stream);
//! - 4: with `--wait`, the task ended in `FAILURE` or `REVOKED`.

use std::fmt;

/// A command's failure.
#[derive(Debug)]
pub enum CliError {
    /// The gateway answered 4xx with its `{"error": {"code", "message"}}`.
    Refused { status: u16, code: String, message: String },
    /// The gateway answered 5xx.
    ServerError { status: u16, code: String, message: String },
    /// No answer: connection refused, timeout, a stream cut short.
    Unreachable(String),
    /// Bad input on the command line, or a declined confirmation.
    Usage(String),
    /// A waited-for task ended without success.
    TaskFailed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Refused { .. } => 1,
            Self::Usage(_) => 2,
            Self::ServerError { .. } | Self::Unreachable(_) => 3,
            Self::TaskFailed(_) => 4,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { status, code, message } | Self::ServerError { status, code, message } => {
                write!(f, "{code} ({status}): {message}")
            }
            Self::Unreachable(m) | Self::Usage(m) | Self::TaskFailed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

/// `error` and its causes on one line: reqwest's own text ("error sending request") says
/// little without the cause underneath (connection refused, timed out...).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}
