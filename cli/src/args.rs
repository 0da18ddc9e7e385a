//! The command line: global connection flags and one subcommand per operator action, each
//! mapped to the gateway route it calls (see `cli/README.md`).

use clap::{Args, Parser, Subcommand};

/// Talk to a Celeriac gateway: enqueue and follow tasks, inspect queues, workers and
/// schedules, steer queues, and watch it all live with `top`.
///
/// Exit codes: 0 done; 1 the gateway refused (4xx); 2 usage; 3 gateway unreachable or
/// failing (5xx); 4 a task waited for with --wait ended in FAILURE or REVOKED.
#[derive(Debug, Parser)]
#[command(name = "celeriac", version)]
pub struct Cli {
    /// The gateway's base URL.
    #[arg(long, env = "CELERIAC_URL", default_value = "http://127.0.0.1:8000", global = true)]
    pub url: String,
    /// Bearer token (a producer token for call and status; an admin token for the rest).
    #[arg(long, env = "CELERIAC_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the gateway's JSON answers instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// Time limit of one HTTP request, in seconds (not of --wait, nor of `top`).
    #[arg(long, default_value_t = 30.0, global = true, value_parser = positive_secs)]
    pub timeout: f64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Gateway(GatewayCommand),
    /// A live view of queues and workers, refreshed every second; q quits.
    Top {
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0, value_parser = positive_secs)]
        interval: f64,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

/// The commands that ask the gateway once and print its answer.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Enqueue a task (POST /tasks); with --wait, follow it to its end and print its result.
    Call(Box<CallArgs>),
    /// A task's record (GET /tasks/{id}).
    Status {
        /// Task id.
        id: String,
    },
    /// List tasks, newest first (GET /tasks), with filters and pages; the archive's history
    /// with --source archive.
    Tasks(Box<TasksArgs>),
    /// Every queue: depths, last-minute counts, oldest pending age (GET /queues).
    Queues,
    /// Live worker processes (GET /workers).
    Workers,
    /// Periodic schedules: list (the default), run, pause, resume.
    Schedules {
        #[command(subcommand)]
        action: Option<ScheduleAction>,
    },
    /// Pause a queue: workers take nothing from it until resumed.
    Pause {
        /// Queue name.
        queue: String,
    },
    /// Resume a paused queue.
    Resume {
        /// Queue name.
        queue: String,
    },
    /// Purge a queue's pending tasks (they become REVOKED); asks first unless --yes.
    Purge {
        /// Queue name.
        queue: String,
        /// Do not ask; needed when stdin is not a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Run a failed or revoked task again, or every dead letter of a queue with --dead.
    Retry(RetryArgs),
    /// Revoke a queued task, or cancel a running one.
    Revoke {
        /// Task id.
        id: String,
        /// Also stop a running task at once.
        #[arg(long)]
        terminate: bool,
    },
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// A registered task name, e.g. `add`.
    pub task: String,
    /// The task's arguments, as JSON, e.g. '[2, 2]' or '{"ms": 500}'.
    #[arg(long, value_name = "JSON")]
    pub args: Option<String>,
    /// Queue to use instead of the task's route.
    #[arg(long)]
    pub queue: Option<String>,
    /// Run no sooner than this many seconds from now.
    #[arg(long, value_name = "SECS")]
    pub countdown: Option<f64>,
    /// Run no sooner than this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub eta: Option<String>,
    /// Do not start after this: seconds from now, or an RFC 3339 time.
    #[arg(long, value_name = "SECS|TIME")]
    pub expires: Option<String>,
    /// Retries allowed after a retryable failure.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Hard time limit, seconds.
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// Soft time limit, seconds.
    #[arg(long, value_name = "SECS")]
    pub soft_time_limit: Option<f64>,
    /// Delay before the first retry, seconds.
    #[arg(long, value_name = "SECS")]
    pub retry_delay: Option<f64>,
    /// Double the delay at every retry (true or false).
    #[arg(long, value_name = "BOOL")]
    pub retry_backoff: Option<bool>,
    /// Ceiling of the retry delay, seconds.
    #[arg(long, value_name = "SECS")]
    pub retry_delay_max: Option<f64>,
    /// Spread retries between half and all of the delay (true or false).
    #[arg(long, value_name = "BOOL")]
    pub retry_jitter: Option<bool>,
    /// A tag kept with the task, searchable later (`celeriac tasks --tag`); repeat for more.
    #[arg(long = "tag", value_name = "NAME=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Idempotency key: repeats with the same key within 24 h return the first task.
    #[arg(long, value_name = "IDEMPOTENCY_KEY")]
    pub key: Option<String>,
    /// Follow the task to its end (a progress bar on a terminal) and print its result.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// `live` (Redis: tasks whose record has not expired) or `archive` (the PostgreSQL history
    /// of tasks that ended). The gateway's default: `archive` when --from, --to, --error or
    /// --args is given, else `live`.
    #[arg(long, value_parser = ["live", "archive"])]
    pub source: Option<String>,
    /// Only tasks in this state (PENDING, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED).
    #[arg(long)]
    pub state: Option<String>,
    /// Only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only this task name.
    #[arg(long)]
    pub task: Option<String>,
    /// Only tasks with this tag, e.g. `user_id=42` (or `user_id:42`, as the gateway writes it).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_tag)]
    pub tag: Option<(String, String)>,
    /// Archive: only tasks that ended at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Archive: only tasks that ended before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Archive: only failures whose error kind or message holds all these words.
    #[arg(long, value_name = "WORDS")]
    pub error: Option<String>,
    /// Archive: only tasks whose arguments contain this JSON, e.g. '{"to": "ada@example.com"}'.
    #[arg(long, value_name = "JSON")]
    pub args: Option<String>,
    /// Page size, 1 to 200 (the gateway's default: 50).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start at this cursor (the `next_cursor` of a previous page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow `next_cursor` through every page (at most 1000 pages).
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleAction {
    /// Every schedule (GET /schedules).
    List,
    /// Fire a schedule's task now (POST /schedules/{name}/run).
    Run {
        name: String,
        /// Idempotency key for the enqueue.
        #[arg(long, value_name = "IDEMPOTENCY_KEY")]
        key: Option<String>,
    },
    /// Pause a schedule.
    Pause { name: String },
    /// Resume a paused schedule.
    Resume { name: String },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RetryArgs {
    /// Task id of a failed or revoked task.
    pub id: Option<String>,
    /// Retry every dead letter of this queue, one by one.
    #[arg(long, value_name = "QUEUE")]
    pub dead: Option<String>,
}

fn positive_secs(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Ok(secs),
        _ => Err(format!("{raw:?} is not a positive number of seconds")),
    }
}

/// The JSON value of `--args` (of `call` and of `tasks`): a usage error, in one line, if it
/// is not JSON.
pub fn args_json(raw: &str) -> Result<serde_json::Value, crate::error::CliError> {
    serde_json::from_str(raw).map_err(|e| crate::error::CliError::Usage(format!("--args: not JSON ({e})")))
}

/// A tag written `name=value` (or `name:value`, the gateway's form): a name of its own and a
/// value, which may hold either sign.
fn parse_tag(text: &str) -> Result<(String, String), String> {
    let (name, value) = match (text.find('='), text.find(':')) {
        (Some(a), Some(b)) => text.split_at(a.min(b)),
        (Some(at), None) | (None, Some(at)) => text.split_at(at),
        (None, None) => return Err(format!("{text:?} is not NAME=VALUE")),
    };
    if name.is_empty() {
        return Err(format!("{text:?} has no tag name before its '=' or ':'"));
    }
    Ok((name.to_owned(), value[1..].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::parse_tag;

    #[test]
    fn a_tag_splits_at_its_first_equals_or_colon() {
        let tag = |text: &str| parse_tag(text).map(|(n, v)| format!("{n}|{v}"));
        assert_eq!(tag("user_id=42").unwrap(), "user_id|42");
        assert_eq!(tag("user_id:42").unwrap(), "user_id|42");
        assert_eq!(tag("next=a:b=c").unwrap(), "next|a:b=c");
        assert_eq!(tag("empty=").unwrap(), "empty|");
        assert!(tag("novalue").unwrap_err().contains("NAME=VALUE"));
        assert!(tag("=42").unwrap_err().contains("no tag name"));
    }
}
