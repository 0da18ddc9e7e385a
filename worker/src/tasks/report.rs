//! `generate_report`: builds a user's activity report (CSV or PDF) over the last 12 complete
//! months and writes it to `<dir>/<task id>.<ext>`, for the gateway to serve.
//!
//! The figures are the user's real activity, read from the PostgreSQL archive when the worker
//! has one (`[archive] database_url`): per month, the e-mails sent to them, the reports built
//! for them and the failures, from the tasks tagged `user_id=<id>`. Without an archive the
//! report says plainly that no history is kept, and shows no figures. The task reports
//! progress after each step, stops between steps when cancelled, and writes the file
//! atomically (a `.tmp` file renamed into place), so a reader never sees half a report.

mod data;
mod layout;
mod pdf;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use celeriac::builtin::{GENERATE_REPORT, GenerateReportArgs, ReportFormat};
use celeriac::{QueueName, Task, TaskContext, TaskError, TaskOptions, TaskSpec};
use celeriac_archive::History;
use celeriac_archive::activity::user_activity;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// The `generate_report` task, writing into one folder.
pub struct GenerateReport {
    dir: PathBuf,
    /// Where the figures come from; `None`: no history is kept.
    history: Option<History>,
}

impl GenerateReport {
    /// Writes reports into `dir`, created on first use; without history (see [`with_history`](Self::with_history)).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            history: None,
        }
    }

    /// Counts the user's activity in this archive.
    pub fn with_history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }
}

impl Task for GenerateReport {
    type Args = GenerateReportArgs;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        let queue = QueueName::parse("reports").expect("a valid queue name");
        TaskSpec {
            name: GENERATE_REPORT.into(),
            queue,
            options: TaskOptions::default(),
        }
    }

    async fn run(&self, ctx: TaskContext, args: GenerateReportArgs) -> Result<Value, TaskError> {
        self.generate(&ctx, &ctx, args).await
    }
}

impl GenerateReport {
    /// The whole run, with progress going to `progress` (the context itself, except in tests).
    async fn generate(&self, ctx: &TaskContext, progress: &impl ProgressSink, args: GenerateReportArgs) -> Result<Value, TaskError> {
        args.validate()
            .map_err(|e| TaskError::permanent(format!("{}: {}", e.field, e.message)).with_kind("InvalidArgs"))?;
        let generated = chrono::Utc::now();
        // One step to collect, one to render, one to write.
        let total = 3;
        stop_if_cancelled(ctx)?;
        let (bytes, rows, note) = match &self.history {
            Some(history) => {
                let months = data::report_months(generated.date_naive());
                let (first, last) = (months[0], months[months.len() - 1]);
                let counts = user_activity(history.pool(), &args.user_id, first.start(), last.next().start())
                    .await
                    .map_err(|e| TaskError::retryable(format!("cannot read the archive: {e}")).with_kind("ArchiveUnavailable"))?;
                let rows = data::activity_rows(&months, &counts);
                progress
                    .report(1, total, &format!("Collected activity from {first} to {last}"))
                    .await?;
                stop_if_cancelled(ctx)?;
                let bytes = match args.format {
                    ReportFormat::Csv => data::to_csv(&rows),
                    ReportFormat::Pdf => layout::render(&args.user_id, generated, &rows),
                };
                (bytes, rows.len(), None)
            }
            None => {
                progress.report(1, total, "No history is kept").await?;
                stop_if_cancelled(ctx)?;
                let bytes = match args.format {
                    ReportFormat::Csv => data::no_history_csv(),
                    ReportFormat::Pdf => layout::render_no_history(&args.user_id, generated),
                };
                (bytes, 0, Some(data::NO_HISTORY))
            }
        };
        let ext = args.format.extension();
        progress.report(total - 1, total, &format!("Rendered the {ext} file")).await?;

        stop_if_cancelled(ctx)?;
        let file_name = format!("{}.{ext}", ctx.task_id());
        // The result and the error name the file, never the server's folder: both are shown to
        // API clients.
        write_atomically(&self.dir, &file_name, &bytes).await.map_err(|e| {
            tracing::warn!(dir = %self.dir.display(), file = %file_name, error = %e, "cannot write the report");
            TaskError::retryable(format!("cannot write the report file {file_name}: {}", e.kind())).with_kind("ReportWriteFailed")
        })?;
        progress.report(total, total, "Report ready").await?;
        let mut out = json!({
            "file_name": file_name,
            "size_bytes": bytes.len(),
            "format": ext,
            "rows": rows,
            "user_id": args.user_id,
            "history": note.is_none(),
        });
        if let Some(note) = note {
            out["note"] = note.into();
        }
        Ok(out)
    }
}

fn stop_if_cancelled(ctx: &TaskContext) -> Result<(), TaskError> {
    if ctx.is_cancelled() {
        return Err(TaskError::permanent("the report was cancelled before it was finished").with_kind("Cancelled"));
    }
    Ok(())
}

/// Where a run's progress goes: the task context, or a recorder in tests.
trait ProgressSink: Sync {
    fn report(&self, current: u64, total: u64, message: &str) -> impl Future<Output = Result<(), TaskError>> + Send;
}

impl ProgressSink for TaskContext {
    /// A run that lost its lease stops (a newer run owns the task); a broker error only costs
    /// this one progress update.
    async fn report(&self, current: u64, total: u64, message: &str) -> Result<(), TaskError> {
        match self.progress(current, total, Some(message)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(TaskError::permanent("the run lost its lease to a newer one").with_kind("Cancelled")),
            Err(e) => {
                tracing::warn!(task_id = %self.task_id(), error = %e, "could not report progress");
                Ok(())
            }
        }
    }
}

/// Writes `bytes` to `dir/<file_name>.tmp`, flushes it to disk and renames it into place.
async fn write_atomically(dir: &Path, file_name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(file_name);
    let tmp = dir.join(format!("{file_name}.tmp"));
    let written = async {
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    written.map(|()| path)
}

#[cfg(test)]
mod tests;
