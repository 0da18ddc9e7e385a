//! The archive's metrics on `GET /metrics`, when the archive is on: the backlog (endings
//! handed over and not archived yet, per queue, and how many an archiver holds) and, when the
//! gateway reads the archive, its size (rows, an estimate, and bytes).

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
        "# HELP celeriac_archive_backlog Endings handed over to the archive and not archived yet."
    );
    let _ = writeln!(text, "# TYPE celeriac_archive_backlog gauge");
    let total: u64 = backlog.iter().map(|b| b.entries).sum();
    let _ = writeln!(text, "celeriac_archive_backlog {total}");
    let _ = writeln!(text, "# HELP celeriac_archive_backlog_queue Endings not archived yet, per queue.");
    let _ = writeln!(text, "# TYPE celeriac_archive_backlog_queue gauge");
    for b in &backlog {
        let _ = writeln!(text, "celeriac_archive_backlog_queue{{queue=\"{}\"}} {}", b.queue, b.entries);
    }
    let _ = writeln!(
        text,
        "# HELP celeriac_archive_pending Endings an archiver has read and not yet committed."
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
