//! Following a task to its end through `GET /tasks/{id}/events`: a live progress bar on a
//! terminal (indicatif, on stderr), plain lines otherwise, so stdout keeps only the result.
//! A stream cut before the end is resumed with `Last-Event-ID`, missing nothing; a silent one
//! is checked against the task's record.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use reqwest::header::ACCEPT;
use serde_json::Value;

use crate::client::Gateway;
use crate::error::{CliError, chain};
use crate::model::{Progress, TaskEvent, TaskRecord, is_terminal, read};
use crate::sse::SseParser;

/// Times a cut stream is opened again before giving up.
const MAX_RECONNECTS: u32 = 5;
/// After this long without a byte on the stream, the record is read directly: a safety net
/// against a gateway whose stream misses a task's end (older gateways could, when the task
/// ended while the stream opened).
const SILENCE_CHECK: Duration = Duration::from_secs(5);

/// Follows task `id` until it is terminal; its final record (the whole JSON answer).
pub async fn follow(gateway: &Gateway, id: &str) -> Result<Value, CliError> {
    let view = View::new(id);
    let mut last_id: Option<String> = None;
    let mut reconnects = 0;
    loop {
        match stream(gateway, id, &mut last_id, &view).await {
            Ok(true) => break,
            // A refusal (no such task, a bad token) will not change by asking again.
            Err(e @ CliError::Refused { .. }) => {
                view.abandon();
                return Err(e);
            }
            cut => {
                reconnects += 1;
                if reconnects > MAX_RECONNECTS {
                    view.abandon();
                    return Err(cut.err().unwrap_or_else(|| {
                        CliError::Unreachable(format!("the event stream of task {id} kept ending before the task did"))
                    }));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(reconnects))).await;
    }
    view.finish();
    gateway.get(&["tasks", id], &[]).await
}

/// Reads one connection of the stream; whether the task reached its end.
async fn stream(gateway: &Gateway, id: &str, last_id: &mut Option<String>, view: &View) -> Result<bool, CliError> {
    let mut request = gateway
        .request(Method::GET, &["tasks", id, "events"])
        .header(ACCEPT, "text/event-stream");
    if let Some(last) = last_id.as_deref() {
        request = request.header("last-event-id", last);
    }
    let mut response = gateway.open(request).await?;
    let mut parser = SseParser::default();
    loop {
        let chunk = match tokio::time::timeout(SILENCE_CHECK, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return Ok(false),
            Ok(Err(e)) => return Err(CliError::Unreachable(format!("the event stream of task {id} broke: {}", chain(&e)))),
            Err(_silence) => {
                let record: TaskRecord = read(&gateway.get(&["tasks", id], &[]).await?, "task record")?;
                if record.is_terminal() {
                    view.state(&record.state);
                    return Ok(true);
                }
                continue;
            }
        };
        for event in parser.feed(&chunk) {
            if event.id.is_some() {
                *last_id = event.id.clone();
            }
            let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
            let ended = match event.kind.as_str() {
                "snapshot" => {
                    let record: TaskRecord = read(&data, "task snapshot")?;
                    view.state(&record.state);
                    if let Some(progress) = &record.progress {
                        view.progress(progress);
                    }
                    record.is_terminal()
                }
                "state" | "progress" => {
                    let event: TaskEvent = read(&data, "task event")?;
                    if let Some(progress) = &event.progress {
                        view.progress(progress);
                    }
                    event.state.as_deref().inspect(|s| view.state(s)).is_some_and(is_terminal)
                }
                _ => false,
            };
            if ended {
                return Ok(true);
            }
        }
    }
}

/// Where the task's course is shown: a bar on a terminal, lines on stderr otherwise.
enum View {
    Bar(ProgressBar),
    Lines { id: String },
}

impl View {
    fn new(id: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::Lines { id: id.to_owned() };
        }
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template("{spinner} {prefix:<8} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
            .expect("the template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar(bar)
    }

    fn state(&self, state: &str) {
        match self {
            Self::Bar(bar) => bar.set_prefix(state.to_owned()),
            Self::Lines { id } => eprintln!("{id} {state}"),
        }
    }

    fn progress(&self, progress: &Progress) {
        let message = progress.message.clone().unwrap_or_default();
        match self {
            Self::Bar(bar) => {
                bar.set_length(progress.total);
                bar.set_position(progress.current);
                bar.set_message(message);
            }
            Self::Lines { id } => eprintln!("{id} progress {}/{} {message}", progress.current, progress.total),
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish();
        }
    }

    fn abandon(&self) {
        if let Self::Bar(bar) = self {
            bar.abandon();
        }
    }
}
