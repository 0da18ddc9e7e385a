//! One fetch loop per queue: take as many tasks as there are free slots (never more) and start
//! them, in one call (`Broker::fetch`; a queue that is paused or has priorities or limits is
//! claimed, then started), and when the queue is empty block on Redis until work arrives (no
//! polling).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use celeriac::QueueName;
use celeriac::broker::{Claim, Fetched, QueueWaiter, Started, UniqueLock, UniqueRelease, new_claim_token};
use celeriac::reconnect::Backoff;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

use crate::acker::Settlement;
use crate::executor::{RunSignals, execute};
use crate::shared::{RunHandle, Shared};

/// How long one blocking wait lasts before the loop looks around again (pause, shutdown).
pub(crate) const IDLE_WAIT: Duration = Duration::from_secs(5);
/// How long a paused queue is left alone before checking again.
pub(crate) const PAUSED_WAIT: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>, queue: QueueName, settle: mpsc::UnboundedSender<Settlement>, stop: CancellationToken) {
    let mut waiter = QueueWaiter::new(&shared.broker, &queue);
    let mut retry = Backoff::default();
    loop {
        let Some(mut permits) = free_slots(&shared, &stop).await else {
            return;
        };
        let Some(fetched) = fetch_until_answered(&shared, &queue, permits.len(), &stop).await else {
            return;
        };
        // Took tasks: they run (or start, then run) on the side, with their permits, so the
        // next fetch overlaps their work: Redis never waits for this loop.
        let Some(nothing) = dispatch(&shared, &queue, fetched, &mut permits, &settle, &stop) else {
            retry.reset();
            continue;
        };
        // Empty, held back by a limit, or paused: wait for what the fetch lacked.
        drop(permits);
        retry.reset();
        let timeout = if nothing == Claim::Paused { PAUSED_WAIT } else { IDLE_WAIT };
        tokio::select! {
            waited = waiter.wait_after(&nothing, timeout) => if let Err(e) = waited {
                shared.consuming.store(false, Ordering::Relaxed);
                tracing::warn!(queue = %queue, error = %e, "waiting for work failed; retrying");
                pause(&stop, retry.next_wait()).await;
            },
            _ = stop.cancelled() => return,
        }
    }
}

/// Sets what a fetch took on its way, each task with a permit taken from `permits`: tasks it
/// started run; ids it only claimed are started, then run. When it took nothing, what it
/// found instead (an empty queue, a pause, a limit).
pub(crate) fn dispatch(
    shared: &Arc<Shared>,
    queue: &QueueName,
    fetched: Fetched,
    permits: &mut Vec<OwnedSemaphorePermit>,
    settle: &mpsc::UnboundedSender<Settlement>,
    stop: &CancellationToken,
) -> Option<Claim> {
    match fetched {
        Fetched::Started(started) if !started.is_empty() => {
            let taken = permits.drain(..started.len()).collect();
            tokio::spawn(run_started(Arc::clone(shared), queue.clone(), started, taken, settle.clone()));
            None
        }
        Fetched::Started(_) => Some(Claim::Ids(Vec::new())),
        Fetched::Claimed(Claim::Ids(ids)) if !ids.is_empty() => {
            let taken = permits.drain(..ids.len()).collect();
            let start = start_and_run(Arc::clone(shared), queue.clone(), ids, taken, settle.clone(), stop.clone());
            tokio::spawn(start);
            None
        }
        Fetched::Claimed(nothing) => Some(nothing),
    }
}

/// Waits for a free slot, then takes every other free one up to a batch: the permits a claim
/// may fill. `None` when stopping.
pub(crate) async fn free_slots(shared: &Shared, stop: &CancellationToken) -> Option<Vec<OwnedSemaphorePermit>> {
    let first = tokio::select! {
        permit = Arc::clone(&shared.slots).acquire_owned() => permit.expect("slots never close"),
        _ = stop.cancelled() => return None,
    };
    let mut permits = vec![first];
    while permits.len() < shared.config.batch_size {
        match Arc::clone(&shared.slots).try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    Some(permits)
}

/// Marks claimed tasks started and runs each that may run, with its slot's permit.
async fn start_and_run(
    shared: Arc<Shared>,
    queue: QueueName,
    ids: Vec<String>,
    permits: Vec<OwnedSemaphorePermit>,
    settle: mpsc::UnboundedSender<Settlement>,
    stop: CancellationToken,
) {
    let started = start_until_stored(&shared, &queue, &ids, &stop).await;
    run_started(shared, queue, started, permits, settle).await;
}

/// Runs each started task that may run, with its slot's permit.
async fn run_started(
    shared: Arc<Shared>,
    queue: QueueName,
    started: Vec<Started>,
    permits: Vec<OwnedSemaphorePermit>,
    settle: mpsc::UnboundedSender<Settlement>,
) {
    for (outcome, permit) in started.into_iter().zip(permits) {
        match outcome {
            Started::Run(delivery) => {
                (shared.metrics.lock().expect("metrics lock")).record_start(queue.as_str(), &delivery.name, delivery.waited);
                let mut unique = UniqueLock::of(&delivery.name, &delivery.args, &delivery.options);
                if let Some(lock) = unique.take_if(|lock| lock.release == UniqueRelease::Started) {
                    crate::acker::release_unique(&shared, &delivery.id, &lock).await;
                }
                tokio::spawn(run_one(
                    Arc::clone(&shared),
                    queue.clone(),
                    delivery,
                    unique,
                    permit,
                    settle.clone(),
                ));
            }
            // Held back by its key's limits: it waits in Redis (parked, or scheduled).
            Started::Skip { id, reason } if reason == "parked" || reason == "deferred" => {
                tracing::debug!(task_id = %id, reason, "not run now")
            }
            Started::Skip { id, reason } => tracing::info!(task_id = %id, reason, "not run"),
        }
    }
}

/// Fetches up to `max` tasks, asking again with the same token after an error until Redis
/// answers: if the lost reply carried tasks, they are leased to us, and only the same token
/// gets them back. `None` when stopping (the worker gives back whatever it still holds).
pub(crate) async fn fetch_until_answered(shared: &Shared, queue: &QueueName, max: usize, stop: &CancellationToken) -> Option<Fetched> {
    let token = new_claim_token();
    let mut retry = Backoff::default();
    loop {
        match shared
            .broker
            .fetch(queue, &shared.config.id, max, shared.config.lease, &token)
            .await
        {
            Ok(fetched) => {
                shared.consuming.store(true, Ordering::Relaxed);
                return Some(fetched);
            }
            Err(e) => {
                shared.consuming.store(false, Ordering::Relaxed);
                tracing::warn!(queue = %queue, error = %e, "cannot fetch tasks; retrying");
                if stop.is_cancelled() {
                    return None;
                }
                pause(stop, retry.next_wait()).await;
            }
        }
    }
}

/// Marks claimed tasks started, retrying through an outage (until the worker stops): they are
/// leased to us, so giving up earlier would leave them waiting for the reaper. Repeating a
/// start that did run is harmless (it is just a newer delivery).
async fn start_until_stored(shared: &Shared, queue: &QueueName, ids: &[String], stop: &CancellationToken) -> Vec<Started> {
    let mut retry = Backoff::default();
    loop {
        match shared.broker.start(queue, &shared.config.id, ids).await {
            Ok(started) => return started,
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "cannot start claimed tasks; retrying");
                if stop.is_cancelled() {
                    // Stopping: the claimed ids stay leased to us; the stop gives them back
                    // if Redis answers by then, else the reaper does once the lease expires.
                    return Vec::new();
                }
                tokio::time::sleep(retry.next_wait()).await;
            }
        }
    }
}

async fn run_one(
    shared: Arc<Shared>,
    queue: QueueName,
    delivery: celeriac::broker::Delivery,
    unique: Option<UniqueLock>,
    permit: OwnedSemaphorePermit,
    settle: mpsc::UnboundedSender<Settlement>,
) {
    let id = delivery.id.clone();
    let task = delivery.name.clone();
    let signals = RunSignals {
        abort: shared.abort.clone(),
        ..Default::default()
    };
    let revoked = Arc::new(AtomicBool::new(false));
    let handle = RunHandle {
        cancel: signals.cancel.clone(),
        terminate: signals.terminate.clone(),
        revoked: Arc::clone(&revoked),
    };
    shared.running.lock().expect("running lock").insert(id.clone(), handle);
    let began = Instant::now();
    // Boxed: the run's state is large (the task's own future inside), and a spawned future is
    // copied whole into its task; boxing it here keeps that copy to this small frame.
    let execution = Box::pin(execute(&shared.registry, &shared.broker, &shared.config.id, delivery, signals)).await;
    let ran = began.elapsed();
    shared.running.lock().expect("running lock").remove(&id);
    let revoked = revoked.load(Ordering::Relaxed);
    let _ = settle.send(Settlement {
        queue,
        execution,
        task,
        ran,
        revoked,
        unique,
        slot: permit,
    });
}

pub(crate) async fn pause(stop: &CancellationToken, how_long: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(how_long) => {}
        _ = stop.cancelled() => {}
    }
}
