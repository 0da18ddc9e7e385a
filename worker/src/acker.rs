//! Stores outcomes in batches: whatever finished while the last batch was being written goes
//! in the next call, with what the runs that were ready to finish then settle first (a fetched
//! batch's runs end together), so a busy worker acknowledges many tasks per round trip and an
//! idle one acknowledges each at once. An outcome is retried until Redis takes it. Stored
//! outcomes are counted in the worker's task metrics; log lines about a task carry its
//! `task_id`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use celeriac::QueueName;
use celeriac::broker::{Ack, Outcome, UniqueLock, Verdict};
use celeriac::metrics::RunOutcome;
use celeriac::reconnect::Backoff;

use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::executor::Execution;
use crate::shared::Shared;

/// Most outcomes stored in one call.
const MAX_BATCH: usize = 512;

/// A finished or interrupted run on a queue.
#[derive(Debug)]
pub(crate) struct Settlement {
    pub queue: QueueName,
    pub execution: Execution,
    /// The task name and how long the run took, for the metrics.
    pub task: String,
    pub ran: Duration,
    /// A revoke reached the run: its outcome is stored as REVOKED whatever it was.
    pub revoked: bool,
    /// A unique task's lock, released once its final outcome is stored (`finished`).
    pub unique: Option<UniqueLock>,
    /// The run's slot, freed once its outcome is stored: a finished task stays leased until
    /// then, so the tasks leased to a worker never outnumber its slots.
    pub slot: OwnedSemaphorePermit,
}

/// What the metrics need of a settled run, beside its outcome.
struct RunFacts {
    task: String,
    ran: Duration,
    revoked: bool,
    unique: Option<UniqueLock>,
}

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Settlement>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        top_up(&mut rx, &mut batch).await;
        store(&shared, std::mem::take(&mut batch)).await;
    }
}

/// Lets the runs that are ready to finish do so first, and adds their outcomes to the batch:
/// a fetched batch's runs are spawned together, and the first to finish woke this loop, so
/// without it the first call could store that one outcome (or a few) while the rest waited.
/// Costs one trip through the runtime's queue when nothing else is ready (an idle worker).
async fn top_up(rx: &mut mpsc::UnboundedReceiver<Settlement>, batch: &mut Vec<Settlement>) {
    tokio::task::yield_now().await;
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(settlement) => batch.push(settlement),
            Err(_) => break,
        }
    }
}

#[derive(Default)]
struct PerQueue {
    outcomes: Vec<Outcome>,
    /// In the order of `outcomes`.
    facts: Vec<RunFacts>,
    interrupted: Vec<String>,
}

async fn store(shared: &Shared, batch: Vec<Settlement>) {
    let mut by_queue: BTreeMap<QueueName, PerQueue> = BTreeMap::new();
    let mut slots = Vec::with_capacity(batch.len());
    for s in batch {
        slots.push(s.slot);
        let entry = by_queue.entry(s.queue).or_default();
        match s.execution {
            Execution::Settled(outcome) => {
                entry.outcomes.push(outcome);
                entry.facts.push(RunFacts {
                    task: s.task,
                    ran: s.ran,
                    revoked: s.revoked,
                    unique: s.unique,
                });
            }
            Execution::Interrupted(delivery) => entry.interrupted.push(delivery.id.suffix().to_owned()),
        }
    }
    let writes = by_queue.iter().map(|(queue, work)| store_queue(shared, queue, work));
    futures::future::join_all(writes).await;
    drop(slots);
}

async fn store_queue(shared: &Shared, queue: &QueueName, work: &PerQueue) {
    let broker = &shared.broker;
    let worker = &shared.config.id;
    let mut retry = Backoff::default();
    // After an attempt whose replication was not confirmed, a refusal is that attempt's own
    // store (this master kept it), not a lost lease.
    let mut unconfirmed = false;
    if !work.outcomes.is_empty() {
        loop {
            match broker.finish(queue, worker, &work.outcomes).await {
                Ok(acks) => {
                    count(shared, &work.outcomes);
                    let refused: Vec<&Outcome> = work
                        .outcomes
                        .iter()
                        .zip(&acks)
                        .filter(|(_, ack)| **ack == Ack::Refused)
                        .map(|(o, _)| o)
                        .collect();
                    // Safe after an unconfirmed store too: an outcome this master kept has left
                    // the in-flight hash, so only true orphans are still held.
                    if !refused.is_empty() {
                        give_back_orphans(shared, queue, &refused).await;
                    }
                    {
                        let mut metrics = shared.metrics.lock().expect("metrics lock");
                        for ((outcome, facts), ack) in work.outcomes.iter().zip(&work.facts).zip(&acks) {
                            if *ack == Ack::Refused && unconfirmed {
                                tracing::info!(task_id = %outcome.id, "outcome already stored by the attempt whose replication was unconfirmed");
                                metrics.record_outcome(
                                    queue.as_str(),
                                    &facts.task,
                                    run_outcome(&outcome.verdict, facts.revoked),
                                    facts.ran,
                                );
                            } else if *ack == Ack::Refused {
                                tracing::warn!(task_id = %outcome.id, "outcome refused: this run lost its lease and a newer run owns the task");
                            } else {
                                let counted = run_outcome(&outcome.verdict, facts.revoked);
                                metrics.record_outcome(queue.as_str(), &facts.task, counted, facts.ran);
                            }
                        }
                    }
                    for ((outcome, facts), ack) in work.outcomes.iter().zip(&work.facts).zip(&acks) {
                        if let Some(lock) = &facts.unique
                            && *ack != Ack::Refused
                            && !matches!(outcome.verdict, Verdict::Retry { .. })
                        {
                            release_unique(shared, &outcome.id, lock).await;
                        }
                    }
                    if acks.contains(&Ack::StoredWorkflowMember) {
                        advance_workflows(shared, queue).await;
                    }
                    break;
                }
                Err(e) => {
                    unconfirmed |= matches!(e, celeriac::BrokerError::NotReplicated(_));
                    let task_ids: Vec<String> = work.outcomes.iter().map(|o| o.id.to_string()).collect();
                    tracing::warn!(queue = %queue, ?task_ids, error = %e, "cannot store outcomes; retrying");
                    if !wait_or_give_up(shared, &mut retry).await {
                        tracing::error!(queue = %queue, ?task_ids, "stopping with outcomes not stored; their leases will expire and they run again elsewhere");
                        return;
                    }
                }
            }
        }
    }
    if !work.interrupted.is_empty() {
        let task_ids: Vec<String> = work.interrupted.iter().map(|suffix| format!("{queue}-{suffix}")).collect();
        retry.reset();
        loop {
            match broker.requeue_own(queue, worker, &work.interrupted).await {
                Ok(n) => {
                    tracing::info!(queue = %queue, count = n, ?task_ids, "gave unfinished tasks back to the queue");
                    break;
                }
                Err(e) => {
                    tracing::warn!(queue = %queue, ?task_ids, error = %e, "cannot give tasks back; retrying");
                    if !wait_or_give_up(shared, &mut retry).await {
                        tracing::error!(queue = %queue, ?task_ids, "stopping with tasks not given back; their leases will expire and they run again elsewhere");
                        return;
                    }
                }
            }
        }
    }
}

/// After refused outcomes: an id still leased to this worker but run by none of its runs is
/// an orphan (a Redis failover lost the start that the run's token came from, but kept the
/// claim): nobody would ever run or free it while this worker lives, so it goes back to its
/// queue and runs again (a redelivery, logged).
async fn give_back_orphans(shared: &Shared, queue: &QueueName, refused: &[&Outcome]) {
    let worker = &shared.config.id;
    let held = match shared.broker.leased(queue, worker).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(queue = %queue, error = %e, "cannot check refused outcomes for orphaned leases");
            return;
        }
    };
    let orphans: Vec<String> = {
        let running = shared.running.lock().expect("running lock");
        refused
            .iter()
            .filter(|o| !running.contains_key(&o.id) && held.iter().any(|h| h == o.id.suffix()))
            .map(|o| o.id.suffix().to_owned())
            .collect()
    };
    if orphans.is_empty() {
        return;
    }
    match shared.broker.requeue_own(queue, worker, &orphans).await {
        Ok(n) => {
            tracing::warn!(queue = %queue, count = n, ?orphans, "gave back tasks leased to this worker whose start Redis lost (failover): they run again")
        }
        Err(e) => tracing::warn!(queue = %queue, error = %e, "cannot give orphaned leases back; retrying at the next refusal"),
    }
}

/// Waits before the next attempt; `false` once a stopping worker should stop trying.
async fn wait_or_give_up(shared: &Shared, retry: &mut Backoff) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(retry.next_wait()) => true,
        _ = shared.give_up.cancelled() => false,
    }
}

/// Lets the workflows of members that just ended go on at once. If this fails, the outbox
/// keeps the entries and the promoter's sweep handles them.
pub(crate) async fn advance_workflows(shared: &Shared, queue: &QueueName) {
    if let Err(e) = shared.broker.process_workflow_outbox(queue).await {
        tracing::warn!(queue = %queue, error = %e, "cannot advance workflows now; the sweep will");
    }
}

/// How a stored run counts: as revoked when a revoke reached it (finish.lua then stores it
/// as REVOKED), else as its verdict says.
fn run_outcome(verdict: &Verdict, revoked: bool) -> RunOutcome {
    match verdict {
        _ if revoked => RunOutcome::Revoked,
        Verdict::Success(_) => RunOutcome::Succeeded,
        Verdict::Failure(_) => RunOutcome::Failed,
        Verdict::Retry { .. } => RunOutcome::Retried,
    }
}

fn count(shared: &Shared, outcomes: &[Outcome]) {
    let failed = outcomes.iter().filter(|o| matches!(o.verdict, Verdict::Failure(_))).count();
    shared.processed.fetch_add(outcomes.len() as u64, Ordering::Relaxed);
    shared.failed.fetch_add(failed as u64, Ordering::Relaxed);
}

/// Ends a unique task's lock; a failure only leaves the lock to expire at the end of its
/// `unique_for`.
pub(crate) async fn release_unique(shared: &Shared, id: &celeriac::TaskId, lock: &UniqueLock) {
    if let Err(e) = shared.broker.release_unique(id, lock).await {
        tracing::warn!(task_id = %id, error = %e, "cannot release the unique lock; it expires at the end of unique_for");
    }
}
