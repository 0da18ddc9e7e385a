//! Queues: `celeriac queues` (`GET /queues`), `pause` and `resume` (`POST
//! /queues/{q}/pause|resume`) and `purge` (`DELETE /queues/{q}/pending`), which asks first on
//! a terminal and, without a terminal to ask on, needs `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use crate::Context;
use crate::error::CliError;
use crate::model::{Queue, read};
use crate::output::{self, Table};

pub async fn list(ctx: &Context) -> Result<(), CliError> {
    let answer = ctx.gateway.get(&["queues"], &[]).await?;
    if ctx.json {
        output::json(&answer);
        return Ok(());
    }
    let queues: Vec<Queue> = read(&answer["queues"], "queue list")?;
    let mut table = Table::new(table_header());
    for queue in &queues {
        table.row(table_row(queue));
    }
    table.print_or("no queues");
    Ok(())
}

/// The columns of a queue, shared with `top`.
pub fn table_header() -> Vec<&'static str> {
    vec![
        "QUEUE",
        "STATE",
        "PENDING",
        "SCHEDULED",
        "ACTIVE",
        "RETRY",
        "DEAD",
        "OK/MIN",
        "FAILED/MIN",
        "OLDEST",
    ]
}

pub fn table_row(queue: &Queue) -> Vec<String> {
    vec![
        queue.name.clone(),
        if queue.paused { "paused" } else { "running" }.into(),
        queue.pending.to_string(),
        queue.scheduled.to_string(),
        queue.active.to_string(),
        queue.retrying.to_string(),
        queue.dead.to_string(),
        queue.succeeded_last_minute.to_string(),
        queue.failed_last_minute.to_string(),
        output::age(queue.oldest_pending_age_secs),
    ]
}

/// Pauses (`true`) or resumes a queue.
pub async fn set_paused(ctx: &Context, queue: &str, paused: bool) -> Result<(), CliError> {
    let action = if paused { "pause" } else { "resume" };
    let answer = ctx.gateway.post(&["queues", queue, action], None).await?;
    if ctx.json {
        output::json(&answer);
    } else {
        let queue: Queue = read(&answer, "queue")?;
        let state = if queue.paused { "paused" } else { "running" };
        println!("queue {} is {state} ({} pending)", queue.name, queue.pending);
    }
    Ok(())
}

pub async fn purge(ctx: &Context, queue: &str, yes: bool) -> Result<(), CliError> {
    if !yes {
        confirm(&format!(
            "Purge every pending task of queue {queue:?}? They become REVOKED and never run."
        ))?;
    }
    let answer = ctx.gateway.delete(&["queues", queue, "pending"]).await?;
    if ctx.json {
        output::json(&answer);
    } else {
        let removed = answer["removed"].as_u64().unwrap_or(0);
        println!("purged {removed} pending task(s) from queue {queue}");
    }
    Ok(())
}

/// Asks `question` on the terminal; anything but `y` or `yes` declines. Without a terminal
/// on stdin nobody can answer, so it refuses and names `--yes`.
fn confirm(question: &str) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(
            "refusing to purge without confirmation: stdin is not a terminal; pass --yes".into(),
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::Usage("not confirmed: nothing was purged".into())),
    }
}
