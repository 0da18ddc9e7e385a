//! `celeriac status ID` (`GET /tasks/{id}`) and `celeriac tasks` (`GET /tasks`, its filters
//! and cursor; `--all` follows the cursor to the end). With `--source archive` or an archive
//! filter (`--from`, `--to`, `--error`, `--args`), the listing searches the PostgreSQL history.

use serde_json::{Value, json};

use crate::Context;
use crate::args::{TasksArgs, args_json};
use crate::error::CliError;
use crate::model::{TaskRecord, read};
use crate::output::{self, Table};

/// Pages `--all` reads at most, so a listing that keeps growing still ends.
const MAX_PAGES: usize = 1000;

pub async fn status(ctx: &Context, id: &str) -> Result<(), CliError> {
    let answer = ctx.gateway.get(&["tasks", id], &[]).await?;
    if ctx.json {
        output::json(&answer);
        return Ok(());
    }
    let record: TaskRecord = read(&answer, "task record")?;
    let mut lines: Vec<(&str, String)> = vec![
        ("id", record.task_id.clone()),
        ("task", record.task.clone()),
        ("queue", record.queue.clone()),
        ("state", record.state.clone()),
        ("attempt", format!("{} of at most {}", record.attempt, record.max_retries + 1)),
        ("args", output::compact(&record.args, 200)),
    ];
    if let Some(p) = &record.progress {
        lines.push((
            "progress",
            format!("{}/{} {}", p.current, p.total, p.message.as_deref().unwrap_or("")),
        ));
    }
    if let Some(result) = &record.result {
        lines.push(("result", output::compact(result, 500)));
    }
    if let Some(error) = &record.error {
        lines.push(("error", format!("{}: {}", error.kind, error.message)));
    }
    let times = [
        ("created", &record.created_at),
        ("eta", &record.eta),
        ("started", &record.started_at),
        ("finished", &record.finished_at),
    ];
    for (name, time) in times {
        if time.is_some() {
            lines.push((name, output::time(time.as_deref())));
        }
    }
    if let Some(worker) = &record.worker {
        lines.push(("worker", worker.clone()));
    }
    let tags = record.tags_text();
    if !tags.is_empty() {
        lines.push(("tags", tags));
    }
    if record.archived {
        lines.push(("source", "the archive (its Redis record has expired)".to_owned()));
    }
    for (name, value) in lines {
        println!("{name:<9} {}", value.trim_end());
    }
    Ok(())
}

pub async fn list(ctx: &Context, args: TasksArgs) -> Result<(), CliError> {
    if let Some(raw) = &args.args {
        args_json(raw)?; // refused here, in the tool's words, before any request
    }
    let tag = args.tag.as_ref().map(|(name, value)| format!("{name}:{value}"));
    let mut query: Vec<(&str, String)> = Vec::new();
    let filters = [
        ("source", &args.source),
        ("state", &args.state),
        ("queue", &args.queue),
        ("task", &args.task),
        ("tag", &tag),
        ("from", &args.from),
        ("to", &args.to),
        ("error", &args.error),
        ("args", &args.args),
    ];
    for (name, value) in filters {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    let mut cursor = args.cursor.clone();
    let mut tasks: Vec<Value> = Vec::new();
    let mut next: Option<String>;
    let mut pages = 0;
    loop {
        let mut page_query = query.clone();
        if let Some(c) = &cursor {
            page_query.push(("cursor", c.clone()));
        }
        let page = ctx.gateway.get(&["tasks"], &page_query).await?;
        tasks.extend(page["tasks"].as_array().cloned().unwrap_or_default());
        next = page["next_cursor"].as_str().map(str::to_owned);
        pages += 1;
        if !args.all || next.is_none() || pages >= MAX_PAGES {
            break;
        }
        cursor = next.clone();
    }
    if ctx.json {
        output::json(&json!({ "tasks": tasks, "next_cursor": next }));
        return Ok(());
    }
    let records = tasks
        .iter()
        .map(|task| read::<TaskRecord>(task, "task record"))
        .collect::<Result<Vec<_>, _>>()?;
    // Tags get a column when any task listed has some.
    let tagged = records.iter().any(|r| !r.tags_text().is_empty());
    let mut titles = vec!["ID", "TASK", "QUEUE", "STATE", "ATTEMPT", "CREATED", "FINISHED"];
    if tagged {
        titles.push("TAGS");
    }
    let mut table = Table::new(titles);
    for record in records {
        let tags = record.tags_text();
        let mut row = vec![
            record.task_id,
            record.task,
            record.queue,
            record.state,
            record.attempt.to_string(),
            output::time(record.created_at.as_deref()),
            output::time(record.finished_at.as_deref()),
        ];
        if tagged {
            row.push(tags);
        }
        table.row(row);
    }
    table.print_or("no tasks");
    if let Some(next) = next {
        println!("more: --cursor {next}");
    }
    Ok(())
}
