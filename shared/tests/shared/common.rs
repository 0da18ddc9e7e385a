//! The harness of the library's tests: a fresh redis-server with a broker on it under a
//! namespace of its own, alone or with a proxy in front that loses a reply on demand.

use std::time::Duration;

use celeriac::broker::{Outcome, Started, Verdict};
use celeriac::settings::RedisSettings;
use celeriac::{Broker, QueueName};
use celeriac_testkit::{RedisServer, ReplyCutter, unique_namespace};

/// How long the tests' brokers keep results: an hour, longer than any test.
pub const TTL: Duration = Duration::from_secs(3600);

/// A fresh redis-server and a broker on it, under a namespace of its own.
pub fn redis_and_broker() -> (RedisServer, Broker) {
    let redis = RedisServer::start();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), TTL).unwrap();
    (redis, broker)
}

/// A redis-server, a proxy in front of it that loses (or holds) the reply to a request on
/// demand, and a broker straight on the server (its replies are never cut). Always one node,
/// even under `CELERIAC_TEST_REDIS=cluster`: the proxy stands before one port.
pub fn redis_behind_cutter() -> (RedisServer, ReplyCutter, Broker) {
    let redis = RedisServer::start_single();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), TTL).unwrap();
    let proxy = ReplyCutter::start(redis.port());
    (redis, proxy, broker)
}

/// Another broker on `broker`'s namespace whose requests go through `proxy`, on a connection of
/// its own (as another process would have).
pub fn broker_through(proxy: &ReplyCutter, broker: &Broker) -> Broker {
    Broker::connect(&proxy.url(), broker.keys().namespace(), TTL).unwrap()
}

/// `[redis]` settings for `url` under a namespace of its own.
pub fn settings_for(url: &str) -> RedisSettings {
    RedisSettings {
        url: url.into(),
        namespace: unique_namespace(),
        ..RedisSettings::default()
    }
}

/// A broker opened on `url` (any topology) under a namespace of its own.
pub async fn broker_on(url: &str) -> Broker {
    Broker::open(&settings_for(url), TTL).await.unwrap()
}

/// Starts `ids` (claimed by `worker` on `queue`) and stores each run's success with `result`,
/// as a worker would; the outcomes stored (ids that may not run are left out).
pub async fn start_and_succeed(broker: &Broker, queue: &QueueName, worker: &str, ids: &[String], result: &str) -> Vec<Outcome> {
    let outcomes: Vec<Outcome> = broker
        .start(queue, worker, ids)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| match s {
            Started::Run(d) => Some(Outcome {
                id: d.id,
                delivery: d.delivery,
                verdict: Verdict::Success(result.into()),
            }),
            Started::Skip { .. } => None,
        })
        .collect();
    broker.finish(queue, worker, &outcomes).await.unwrap();
    outcomes
}
