//! The latency yardstick: the cheapest worker we can write for a task's trip from enqueue to
//! its stored result, so `celeriac-bench` can say how low this machine lets any Redis worker
//! keep enqueue-to-SUCCESS while other producers load it. `celeriac-bench` measures it right
//! after Celeriac's own worker, with the same probe, the same load and the same event channel
//! (`bench/src/latency.rs`, `Bench::latency_floor`). Not product code, and not a design to copy: like
//! `../shared/limit`'s yardstick for a task's lifecycle and `celeriac-http-yardstick` for the
//! gateway, it is the floor Celeriac is compared with, in the same run.
//!
//! One thread, one connection, one loop: take up to 100 tasks and mark them started with one
//! script (the lifecycle yardstick's fetch: `RPOP`, `SADD` to the worker's in-flight set, an
//! `HSET` a task), run nothing (no-op tasks), store their results with a second (its
//! acknowledgement: `SREM`, `HSET`, `EXPIRE`), each script publishing its ids on the event
//! channel as Celeriac's scripts do (`"id id id"`); when there is nothing to take, block until
//! there is (`BLMOVE` of the list onto itself, as Celeriac's worker waits). No fencing, leases,
//! retries, revokes, limits, event log, listing or runtime threads.
//!
//! Keys: `<prefix>pending` (the list the bench enqueues to: `LPUSH` of ids), `<prefix>inflight`,
//! and `<prefix>t:<id>` (a task's hash).
//!
//!     celeriac-latency-yardstick --redis-url redis://127.0.0.1:6379 --prefix 'bench:{floor}:' --channel bench:events

use anyhow::Context;
use clap::Parser;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

/// Takes up to `ARGV[1]` tasks off the list, holds them in the in-flight set, marks each
/// started and publishes their ids.
const FETCH: &str = r"
local ids = redis.call('RPOP', KEYS[1], ARGV[1])
if not ids then return {} end
redis.call('SADD', KEYS[2], unpack(ids))
for _, id in ipairs(ids) do redis.call('HSET', ARGV[3] .. id, 's', 'S', 'w', ARGV[2]) end
redis.call('PUBLISH', ARGV[4], table.concat(ids, ' '))
return ids
";
/// Stores the results of the tasks in `ARGV[3..]`, drops them from the in-flight set and
/// publishes their ids.
const ACK: &str = r"
redis.call('SREM', KEYS[1], unpack(ARGV, 3))
for i = 3, #ARGV do
  local key = ARGV[1] .. ARGV[i]
  redis.call('HSET', key, 's', 'OK', 'r', 'null')
  redis.call('EXPIRE', key, 86400)
end
redis.call('PUBLISH', ARGV[2], table.concat(ARGV, ' ', 3))
return #ARGV - 2
";
/// Most tasks a fetch takes, as the lifecycle yardstick's batches.
const BATCH: usize = 100;

#[derive(Debug, Parser)]
#[command(about = "The cheapest Redis worker for no-op tasks: the floor of the enqueue-to-SUCCESS latency")]
struct Args {
    /// The Redis to work on (a loopback one: this is a benchmark's tool).
    #[arg(long)]
    redis_url: String,
    /// The prefix of its keys: the list `<prefix>pending`, the set `<prefix>inflight`, the
    /// task hashes `<prefix>t:<id>`. Must hold a hash tag (`{...}`), so the keys the
    /// scripts build share the slot of the keys they declare.
    #[arg(long, value_parser = hash_tagged)]
    prefix: String,
    /// Where each script publishes the ids it started or finished.
    #[arg(long)]
    channel: String,
}

fn hash_tagged(raw: &str) -> Result<String, String> {
    let tag = raw.split_once('{').and_then(|(_, rest)| rest.split_once('}'));
    match tag {
        Some((tag, _)) if !tag.is_empty() => Ok(raw.to_owned()),
        _ => Err(format!("--prefix {raw:?} must hold a hash tag, such as 'bench:{{floor}}:'")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // No response timeout: the wait for work blocks for up to a second.
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    let mut conn = redis::Client::open(args.redis_url.as_str())
        .context("--redis-url")?
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connecting to Redis at --redis-url {}", args.redis_url))?;
    let (pending, inflight, tasks) = (
        format!("{}pending", args.prefix),
        format!("{}inflight", args.prefix),
        format!("{}t:", args.prefix),
    );
    let (fetch, ack) = (redis::Script::new(FETCH), redis::Script::new(ACK));
    loop {
        let ids: Vec<String> = fetch
            .key(&pending)
            .key(&inflight)
            .arg(BATCH)
            .arg("w1")
            .arg(&tasks)
            .arg(&args.channel)
            .invoke_async(&mut conn)
            .await?;
        if ids.is_empty() {
            wait_for_work(&mut conn, &pending).await?;
            continue;
        }
        let _: i64 = ack
            .key(&inflight)
            .arg(&tasks)
            .arg(&args.channel)
            .arg(&ids)
            .invoke_async(&mut conn)
            .await?;
    }
}

/// Blocks for up to a second until the list holds a task, taking nothing.
async fn wait_for_work(conn: &mut MultiplexedConnection, pending: &str) -> redis::RedisResult<()> {
    let _: Option<String> = redis::cmd("BLMOVE")
        .arg(pending)
        .arg(pending)
        .arg("RIGHT")
        .arg("RIGHT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(())
}
