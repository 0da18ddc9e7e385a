//! The shards this worker consumes: every shard of each of its queues (a plain queue is its
//! own one shard). The list starts with the counts known at start (the settings', raised in
//! Redis, and Redis's own) and grows when a queue's shards are raised later (settings of
//! another process, or the admin API): [`added`] is checked every few seconds and the
//! runtime starts a fetch loop for each new shard. Shards are never removed (their count is
//! never lowered), so every task of every shard is consumed.

use std::time::Duration;

use celeriac::QueueName;

use crate::shared::Shared;

/// How often a worker looks for shards added since it started.
pub(crate) const WATCH_PERIOD: Duration = Duration::from_secs(5);

/// Raises the shard counts this worker's settings declare; then the shards of its queues it
/// does not consume yet, now added to [`Shared::queues`].
pub(crate) async fn added(shared: &Shared) -> Vec<QueueName> {
    let broker = &shared.broker;
    let mut wanted = Vec::new();
    for queue in &shared.config.queues {
        let declared = shared.config.shards.get(queue).copied().unwrap_or(1);
        let known = broker.shard_count(queue).await;
        if declared > known
            && let Err(e) = broker.raise_shards(queue, declared).await
        {
            tracing::warn!(queue = %queue, error = %e, "cannot record the queue's shards in Redis yet");
        }
        wanted.extend((0..declared.max(known)).map(|i| queue.shard(i)));
    }
    let mut queues = shared.queues.write().expect("queues lock");
    let new: Vec<QueueName> = wanted.into_iter().filter(|q| !queues.contains(q)).collect();
    queues.extend(new.iter().cloned());
    new
}
