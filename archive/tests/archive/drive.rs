//! Tasks driven through the broker's calls as a worker drives them (enqueue, claim, start),
//! up to the outcomes a worker would acknowledge. Shared by the tests' harness (common.rs)
//! and the archive's examples, which include this file by path.

use std::time::Duration;

use celeriac::broker::{Claim, Delivery, NewTask, Outcome, Started, Verdict, new_claim_token};
use celeriac::{Broker, QueueName};

/// Enqueues `tasks` on `queue` in one call, then [`claimed_outcomes`] for all of them.
pub async fn started_outcomes(
    broker: &Broker,
    queue: &QueueName,
    worker: &str,
    tasks: &[NewTask],
    verdict: impl Fn(&Delivery) -> Verdict,
) -> Vec<Outcome> {
    broker.enqueue(queue, tasks, 0, None).await.unwrap();
    claimed_outcomes(broker, queue, worker, tasks.len(), verdict).await
}

/// Claims `n` pending tasks of `queue` and starts every one of them as `worker`, and gives
/// each run the verdict `verdict` decides: the outcomes, ready for `Broker::finish`.
pub async fn claimed_outcomes(
    broker: &Broker,
    queue: &QueueName,
    worker: &str,
    n: usize,
    verdict: impl Fn(&Delivery) -> Verdict,
) -> Vec<Outcome> {
    let ids = match broker
        .claim(queue, worker, n, Duration::from_secs(30), &new_claim_token())
        .await
        .unwrap()
    {
        Claim::Ids(ids) => ids,
        other => panic!("took nothing: {other:?}"),
    };
    assert_eq!(ids.len(), n, "claimed every task");
    broker
        .start(queue, worker, &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|s| match s {
            Started::Run(d) => Outcome {
                verdict: verdict(&d),
                id: d.id,
                delivery: d.delivery,
            },
            other => panic!("expected a run, got {other:?}"),
        })
        .collect()
}
