//! Actions on tasks: `celeriac retry ID` (`POST /tasks/{id}/retry`), `celeriac retry --dead
//! QUEUE` and `celeriac revoke ID [--terminate]` (`POST /tasks/{id}/revoke`).
//!
//! The gateway has no route that retries a whole queue's dead letters, so `--dead` reads them
//! from `GET /queues/{q}/dead` a page at a time and retries them one by one: not atomic, and
//! a task that fails again while this runs is not retried twice.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::Context;
use crate::error::CliError;
use crate::output;

/// Dead letters read per page (the gateway's largest).
const DEAD_PAGE: u32 = 200;
/// Pages read at most, so a queue that keeps failing still ends.
const MAX_DEAD_PAGES: usize = 500;

pub async fn retry(ctx: &Context, id: &str) -> Result<(), CliError> {
    let answer = ctx.gateway.post(&["tasks", id, "retry"], None).await?;
    print_outcome(ctx, &answer);
    Ok(())
}

pub async fn revoke(ctx: &Context, id: &str, terminate: bool) -> Result<(), CliError> {
    let body = json!({ "terminate": terminate });
    let answer = ctx.gateway.post(&["tasks", id, "revoke"], Some(&body)).await?;
    print_outcome(ctx, &answer);
    Ok(())
}

fn print_outcome(ctx: &Context, answer: &Value) {
    if ctx.json {
        output::json(answer);
    } else {
        println!(
            "{}  {}",
            answer["task_id"].as_str().unwrap_or("?"),
            answer["outcome"].as_str().unwrap_or("?")
        );
    }
}

/// Retries every dead letter of `queue`, one request each. A task the gateway refuses (it
/// was retried meanwhile: `409`; or its record expired: `404`) is counted and skipped.
pub async fn retry_dead(ctx: &Context, queue: &str) -> Result<(), CliError> {
    let mut seen: HashSet<String> = HashSet::new();
    let (mut retried, mut skipped) = (Vec::new(), Vec::new());
    for _ in 0..MAX_DEAD_PAGES {
        let page = ctx
            .gateway
            .get(&["queues", queue, "dead"], &[("limit", DEAD_PAGE.to_string())])
            .await?;
        let ids: Vec<String> = page["tasks"]
            .as_array()
            .map(|tasks| tasks.iter().filter_map(|t| t["task_id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let fresh: Vec<String> = ids.into_iter().filter(|id| seen.insert(id.clone())).collect();
        if fresh.is_empty() {
            break;
        }
        for id in fresh {
            match ctx.gateway.post(&["tasks", &id, "retry"], None).await {
                Ok(_) => retried.push(id),
                Err(CliError::Refused { code, message, .. }) => skipped.push(json!({ "task_id": id, "code": code, "message": message })),
                Err(e) => return Err(e),
            }
        }
    }
    if ctx.json {
        output::json(&json!({ "queue": queue, "retried": retried, "skipped": skipped }));
    } else {
        for id in &retried {
            println!("{id}  queued");
        }
        for skip in &skipped {
            eprintln!("skipped {}: {}: {}", skip["task_id"], skip["code"], skip["message"]);
        }
        println!(
            "retried {} dead letter(s) of queue {queue} one by one (the gateway has no bulk retry){}",
            retried.len(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped {}", skipped.len())
            }
        );
    }
    Ok(())
}
