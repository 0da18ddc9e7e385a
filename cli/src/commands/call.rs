//! `celeriac call TASK --args JSON [options] [--tag NAME=VALUE...] [--key K] [--wait]`: `POST /tasks`, then with
//! `--wait` the task followed to its end and its result printed (exit 4 if it failed).

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::Context;
use crate::args::{CallArgs, args_json};
use crate::error::CliError;
use crate::follow::follow;
use crate::model::{Accepted, TaskRecord, read};
use crate::output;

pub async fn run(ctx: &Context, args: CallArgs) -> Result<(), CliError> {
    let body = request_body(&args)?;
    let mut request = ctx.gateway.request(Method::POST, &["tasks"]).json(&body);
    if let Some(key) = &args.key {
        request = request.header("idempotency-key", key);
    }
    let answer = ctx.gateway.send(request).await?;
    let accepted: Accepted = read(&answer, "enqueue answer")?;
    if !args.wait {
        if ctx.json {
            output::json(&answer);
        } else {
            println!("{}  {}  {}", accepted.task_id, accepted.state, accepted.queue);
        }
        return Ok(());
    }
    let answer = follow(&ctx.gateway, &accepted.task_id).await?;
    let record: TaskRecord = read(&answer, "task record")?;
    if ctx.json {
        output::json(&answer);
    } else if record.state == "SUCCESS" {
        println!(
            "{}",
            serde_json::to_string_pretty(&record.result.unwrap_or(Value::Null)).expect("JSON serializes")
        );
    }
    match record.state.as_str() {
        "SUCCESS" => Ok(()),
        state => {
            let why = record.error.map(|e| format!(": {}: {}", e.kind, e.message)).unwrap_or_default();
            Err(CliError::TaskFailed(format!("task {} ended {state}{why}", record.task_id)))
        }
    }
}

/// The `POST /tasks` body: the task, its arguments and the options given.
fn request_body(args: &CallArgs) -> Result<Value, CliError> {
    let mut body = Map::new();
    body.insert("task".into(), json!(args.task));
    if let Some(raw) = &args.args {
        body.insert("args".into(), args_json(raw)?);
    }
    let expires = args.expires.as_deref().map(|e| match e.trim().parse::<f64>() {
        Ok(secs) => json!(secs),
        Err(_) => json!(e),
    });
    let options = [
        ("queue", args.queue.as_ref().map(|v| json!(v))),
        ("countdown", args.countdown.map(|v| json!(v))),
        ("eta", args.eta.as_ref().map(|v| json!(v))),
        ("expires", expires),
        ("max_retries", args.max_retries.map(|v| json!(v))),
        ("time_limit", args.time_limit.map(|v| json!(v))),
        ("soft_time_limit", args.soft_time_limit.map(|v| json!(v))),
        ("retry_delay", args.retry_delay.map(|v| json!(v))),
        ("retry_backoff", args.retry_backoff.map(|v| json!(v))),
        ("retry_delay_max", args.retry_delay_max.map(|v| json!(v))),
        ("retry_jitter", args.retry_jitter.map(|v| json!(v))),
    ];
    for (name, value) in options {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    if !args.tags.is_empty() {
        let tags: Map<String, Value> = args.tags.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
        body.insert("tags".into(), Value::Object(tags));
    }
    Ok(Value::Object(body))
}
