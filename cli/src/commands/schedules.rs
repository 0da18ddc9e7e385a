//! `celeriac schedules [list|run|pause|resume]`: `GET /schedules` and `POST
//! /schedules/{name}/run|pause|resume`.

use reqwest::Method;

use crate::Context;
use crate::args::ScheduleAction;
use crate::error::CliError;
use crate::model::{Accepted, Schedule, read};
use crate::output::{self, Table};

pub async fn run(ctx: &Context, action: Option<ScheduleAction>) -> Result<(), CliError> {
    match action.unwrap_or(ScheduleAction::List) {
        ScheduleAction::List => list(ctx).await,
        ScheduleAction::Run { name, key } => fire(ctx, &name, key).await,
        ScheduleAction::Pause { name } => set_paused(ctx, &name, true).await,
        ScheduleAction::Resume { name } => set_paused(ctx, &name, false).await,
    }
}

async fn list(ctx: &Context) -> Result<(), CliError> {
    let answer = ctx.gateway.get(&["schedules"], &[]).await?;
    if ctx.json {
        output::json(&answer);
        return Ok(());
    }
    let schedules: Vec<Schedule> = read(&answer["schedules"], "schedule list")?;
    let mut table = Table::new(vec!["NAME", "TASK", "QUEUE", "WHEN", "SOURCE", "STATE", "NEXT RUN", "LAST RUN"]);
    for s in schedules {
        table.row(vec![
            s.name,
            s.task,
            s.queue.unwrap_or_else(|| "-".into()),
            when(s.every.as_deref(), s.cron.as_deref(), s.timezone.as_deref()),
            s.source,
            if s.paused { "paused" } else { "active" }.into(),
            output::time(s.next_run.as_deref()),
            output::time(s.last_run.as_deref()),
        ]);
    }
    table.print_or("no schedules");
    Ok(())
}

/// `every 30s` or `cron 0 2 * * * (Europe/Paris)`.
fn when(every: Option<&str>, cron: Option<&str>, timezone: Option<&str>) -> String {
    match (every, cron) {
        (Some(every), _) => format!("every {every}"),
        (None, Some(cron)) => format!("cron {cron} ({})", timezone.unwrap_or("UTC")),
        (None, None) => "-".into(),
    }
}

async fn fire(ctx: &Context, name: &str, key: Option<String>) -> Result<(), CliError> {
    let mut request = ctx.gateway.request(Method::POST, &["schedules", name, "run"]);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let answer = ctx.gateway.send(request).await?;
    if ctx.json {
        output::json(&answer);
    } else {
        let accepted: Accepted = read(&answer, "enqueue answer")?;
        println!("{}  {}  {}", accepted.task_id, accepted.state, accepted.queue);
    }
    Ok(())
}

async fn set_paused(ctx: &Context, name: &str, paused: bool) -> Result<(), CliError> {
    let action = if paused { "pause" } else { "resume" };
    let answer = ctx.gateway.post(&["schedules", name, action], None).await?;
    if ctx.json {
        output::json(&answer);
    } else {
        let schedule: Schedule = read(&answer, "schedule")?;
        let state = if schedule.paused { "paused" } else { "active" };
        println!(
            "schedule {} is {state} (next run {})",
            schedule.name,
            output::time(schedule.next_run.as_deref())
        );
    }
    Ok(())
}
