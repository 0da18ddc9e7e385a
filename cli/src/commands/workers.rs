//! `celeriac workers`: the live worker processes (`GET /workers`).

use crate::Context;
use crate::error::CliError;
use crate::model::{Worker, read};
use crate::output::{self, Table};

pub async fn list(ctx: &Context) -> Result<(), CliError> {
    let answer = ctx.gateway.get(&["workers"], &[]).await?;
    if ctx.json {
        output::json(&answer);
        return Ok(());
    }
    let workers: Vec<Worker> = read(&answer["workers"], "worker list")?;
    let mut table = Table::new(table_header());
    for worker in &workers {
        table.row(table_row(worker));
    }
    table.print_or("no live workers");
    Ok(())
}

/// The columns of a worker, shared with `top`.
pub fn table_header() -> Vec<&'static str> {
    vec!["WORKER", "HOST", "PID", "QUEUES", "RUNNING", "PROCESSED", "FAILED", "HEARTBEAT"]
}

pub fn table_row(worker: &Worker) -> Vec<String> {
    vec![
        worker.id.clone(),
        worker.host.clone(),
        worker.pid.to_string(),
        worker.queues.join(","),
        format!("{}/{}", worker.running, worker.concurrency),
        worker.processed.to_string(),
        worker.failed.to_string(),
        output::time(Some(&worker.last_heartbeat)),
    ]
}
