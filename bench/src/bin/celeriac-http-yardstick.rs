//! The HTTP yardstick: the cheapest gateway we can write for the seed app's two routes, so the
//! side-by-side run (`bench/compare/celeriac_http.py`) can say how far this machine lets any
//! Rust gateway go under the `wrk` load the speed goals are set in. Not product code, and not
//! a design to copy: like `../shared/limit`'s yardstick for a task's lifecycle, it is the
//! floor Celeriac's gateway is compared with, in the same run.
//!
//! - `POST /emails`: reads `{to, subject, body}` (a missing field is refused with 422 by
//!   axum's JSON extractor), draws a UUID v7 id and stores the task with one script, the
//!   yardstick's own enqueue for one task (`HSET` of state and payload, `LPUSH` of the id);
//!   answers `202` with the id, its state, its queue and where to poll it.
//! - `GET /tasks/{id}`: one `HGETALL` of the task's hash, answered as a JSON object of its
//!   fields (404 when there is none).
//!
//! The same stack as the gateway (axum 0.8, tokio's multi-threaded runtime, jemalloc, the
//! redis crate), with nothing else: no authentication, validation of the address, metrics,
//! tracing, idempotency, limits, listing, or decoding of a record. Its keys live under the
//! `http-yardstick` namespace.
//!
//!     celeriac-http-yardstick --bind 127.0.0.1:8100 --redis-url redis://127.0.0.1:6379

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde::Deserialize;
use serde_json::json;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The yardstick's enqueue (`lifecycle_lean.py`), for one task: its hash, then its id on the
/// queue's list.
const ENQUEUE: &str = "redis.call('HSET', KEYS[2], 's', 'P', 'p', ARGV[2]) redis.call('LPUSH', KEYS[1], ARGV[1]) return 1";
/// Where the tasks of `POST /emails` go, and the prefix of their hashes.
const PENDING: &str = "http-yardstick:{emails}:pending";
const TASK_PREFIX: &str = "http-yardstick:{emails}:t:";

#[derive(Debug, Parser)]
#[command(about = "The cheapest gateway for POST /emails and GET /tasks/{id}: the floor of the HTTP measures")]
struct Args {
    /// Where to listen: a loopback address.
    #[arg(long, value_parser = loopback_address)]
    bind: SocketAddr,
    /// The Redis to store and read tasks in.
    #[arg(long)]
    redis_url: String,
}

fn loopback_address(raw: &str) -> Result<SocketAddr, String> {
    let address: SocketAddr = raw.parse().map_err(|e| format!("--bind {raw:?} is not an address: {e}"))?;
    match address.ip().is_loopback() {
        true => Ok(address),
        false => Err(format!("--bind {raw:?} must be a loopback address (127.0.0.1:<port>)")),
    }
}

#[derive(Clone)]
struct Yardstick {
    redis: redis::aio::MultiplexedConnection,
    enqueue: redis::Script,
}

#[derive(Deserialize)]
struct Email {
    to: String,
    subject: String,
    body: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let redis = redis::Client::open(args.redis_url.as_str())
        .context("--redis-url")?
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to Redis at --redis-url {}", args.redis_url))?;
    let state = Yardstick {
        redis,
        enqueue: redis::Script::new(ENQUEUE),
    };
    let app = Router::new()
        .route("/emails", post(post_email))
        .route("/tasks/{id}", get(get_task))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("--bind {}", args.bind))?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn post_email(State(mut yard): State<Yardstick>, Json(email): Json<Email>) -> Response {
    let id = format!("emails-{}", uuid::Uuid::now_v7().simple());
    let payload = json!({"to": email.to, "subject": email.subject, "body": email.body}).to_string();
    let stored: redis::RedisResult<i64> = yard
        .enqueue
        .key(PENDING)
        .key(format!("{TASK_PREFIX}{id}"))
        .arg(&id)
        .arg(payload)
        .invoke_async(&mut yard.redis)
        .await;
    match stored {
        Ok(_) => {
            let status_url = format!("/tasks/{id}");
            let body = json!({"task_id": id, "state": "PENDING", "queue": "emails", "status_url": status_url});
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn get_task(State(mut yard): State<Yardstick>, Path(id): Path<String>) -> Response {
    let fields: redis::RedisResult<HashMap<String, String>> = redis::cmd("HGETALL")
        .arg(format!("{TASK_PREFIX}{id}"))
        .query_async(&mut yard.redis)
        .await;
    match fields {
        Ok(fields) if fields.is_empty() => StatusCode::NOT_FOUND.into_response(),
        Ok(fields) => Json(json!({"task_id": id, "fields": fields})).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
