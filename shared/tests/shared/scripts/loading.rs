//! The scripts and the connection: scripts flushed from Redis are loaded again, and an
//! unreachable Redis is an error, not a hang.

use celeriac::broker::{Ack, NewTask, Verdict};
use celeriac::{BrokerError, TaskState};
use serde_json::json;

use super::{enqueue_and_start, finish_run, queue, state};
use crate::common::redis_and_broker;

#[tokio::test]
async fn scripts_flushed_from_redis_are_loaded_again() {
    let (_redis, broker) = redis_and_broker();
    // As after a Redis restart: the server has none of the scripts.
    let flush = || async {
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async::<()>(&mut broker.connection())
            .await
            .unwrap()
    };
    flush().await;
    let (task, d) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    flush().await;
    assert_eq!(finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await, [Ack::Stored]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Success);
}

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    // One node, even under CELERIAC_TEST_REDIS=cluster: the test kills it.
    let mut redis = celeriac_testkit::RedisServer::start_single();
    let broker = celeriac::Broker::connect(&redis.url(), &celeriac_testkit::unique_namespace(), crate::common::TTL).unwrap();
    redis.kill();
    let task = NewTask::new(&queue(), "echo", &json!(1));
    assert!(matches!(
        broker.enqueue(&queue(), &[task], 0, None).await,
        Err(BrokerError::Redis(_))
    ));
}
