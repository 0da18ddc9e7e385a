//! The archive's metrics on `GET /metrics`, when the archive is on: the backlog (hand-overs
//! not archived yet, per queue, how many an archiver holds, and how long the oldest has
//! waited) and, when the gateway reads the archive, its size (rows, an estimate, and bytes). A
//! hand-over is one archive stream entry: the endings of one script call (lua/archive.lua).

use std::fmt::Write;

use celeriac::Broker;
use celeriac_archive::History;

use crate::error::ApiError;

/// The archive's metrics in the Prometheus text format.
pub async fn render(broker: &Broker, history: Option<&History>) -> Result<String, ApiError> {
    let backlog = celeriac_archive::backlog(broker).await?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# HELP celeriac_archive_backlog Hand-overs to the archive not archived yet: stream entries, each \
         holding the tasks one script call ended (a worker's batch of finishes is one)."
    );
    let _ = writeln!(text, "# TYPE celeriac_archive_backlog gauge");
    let total: u64 = backlog.iter().map(|b| b.entries).sum();
    let _ = writeln!(text, "celeriac_archive_backlog {total}");
    let oldest = backlog.iter().map(|b| b.oldest_ms).filter(|&ms| ms > 0).min();
    let now = chrono::Utc::now().timestamp_millis();
    let waited = oldest.map_or(0.0, |ms| (now - ms).max(0) as f64 / 1000.0);
    let _ = writeln!(
        text,
        "# HELP celeriac_archive_oldest_seconds How long the oldest hand-over not archived yet has waited (0: none waits)."
    );
    let _ = writeln!(text, "# TYPE celeriac_archive_oldest_seconds gauge");
    let _ = writeln!(text, "celeriac_archive_oldest_seconds {waited:.3}");
    let _ = writeln!(
        text,
        "# HELP celeriac_archive_backlog_queue Hand-overs not archived yet, per queue."
    );
    let _ = writeln!(text, "# TYPE celeriac_archive_backlog_queue gauge");
    for b in &backlog {
        let _ = writeln!(text, "celeriac_archive_backlog_queue{{queue=\"{}\"}} {}", b.queue, b.entries);
    }
    let _ = writeln!(
        text,
        "# HELP celeriac_archive_pending Hand-overs an archiver has read and not yet committed."
    );
    let _ = writeln!(text, "# TYPE celeriac_archive_pending gauge");
    let _ = writeln!(text, "celeriac_archive_pending {}", backlog.iter().map(|b| b.pending).sum::<u64>());
    if let Some(history) = history {
        let (rows, bytes) = history.size().await?;
        let _ = writeln!(text, "# HELP celeriac_archive_rows Archived tasks (PostgreSQL's estimate).");
        let _ = writeln!(text, "# TYPE celeriac_archive_rows gauge");
        let _ = writeln!(text, "celeriac_archive_rows {rows}");
        let _ = writeln!(
            text,
            "# HELP celeriac_archive_bytes Size of the archive table and its indexes on disk."
        );
        let _ = writeln!(text, "# TYPE celeriac_archive_bytes gauge");
        let _ = writeln!(text, "celeriac_archive_bytes {bytes}");
    }
    Ok(text)
}
