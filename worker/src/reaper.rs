//! Crash recovery, run by every worker: tasks leased to a worker that is proven dead (its
//! process is gone from this host's process table: `liveness.rs`) or whose lease expired (it
//! was killed, lost power or its network) go back to the front of their queue, and workflows
//! whose start was cut short get their first members. Safe with any number of reapers at once:
//! recovery is one guarded script per (worker, queue), and a member is stored once however
//! often it is enqueued.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// How long a workflow's start may last before a reaper finishes it. A start is a few Redis
/// calls, so this is only ever reached by a start cut short (finishing one still under way
/// would be harmless too: its members are stored once).
const ABANDONED_WORKFLOW_START: Duration = Duration::from_secs(30);

/// Checks at start (a worker restarted after a crash recovers at once), then every tenth of
/// a lease with some jitter: a crashed worker's tasks are back within one lease after its
/// last heartbeat, plus at most a tenth of a lease.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let period = shared.config.lease / 10;
    loop {
        if let Err(e) = recover_dead_once(&shared).await {
            tracing::warn!(error = %e, "reaper could not check for dead workers; will retry");
        }
        if let Err(e) = reap_once(&shared).await {
            tracing::warn!(error = %e, "reaper could not check leases; will retry");
        }
        if let Err(e) = finish_abandoned_workflow_starts(&shared).await {
            tracing::warn!(error = %e, "reaper could not check workflow starts; will retry");
        }
        let jitter = Duration::from_millis(fastrand::u64(0..=period.as_millis() as u64 / 2 + 1));
        tokio::select! {
            _ = tokio::time::sleep(period / 2 + jitter) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Recovers at once the tasks of every worker on this worker's queues that is proven dead,
/// whatever its lease says, and drops its registry entry. Returns how many tasks went back.
pub(crate) async fn recover_dead_once(shared: &Shared) -> Result<usize, celeriac::BrokerError> {
    let Some(mine) = shared.config.host_id.as_deref() else {
        return Ok(0);
    };
    let mut holders = Vec::new();
    let queues = shared.queues();
    for queue in &queues {
        for worker in shared.broker.lease_holders(queue).await? {
            if worker != shared.config.id {
                holders.push((queue, worker));
            }
        }
    }
    let mut ids: Vec<String> = holders.iter().map(|(_, w)| w.clone()).collect();
    ids.sort();
    ids.dedup();
    let dead: Vec<_> = shared
        .broker
        .worker_infos(&ids)
        .await?
        .into_iter()
        .filter(|w| crate::liveness::proven_dead(w, Some(mine)))
        .collect();
    let mut recovered = 0;
    for worker in &dead {
        for (queue, _) in holders.iter().filter(|(_, w)| *w == worker.id) {
            let n = shared.broker.recover_dead(queue, &worker.id).await?;
            if n > 0 {
                tracing::warn!(queue = %queue, dead_worker = %worker.id, pid = worker.pid, tasks = n, "recovered the tasks of a worker whose process is gone");
            }
            recovered += n;
        }
        shared.broker.unregister_worker(&worker.id).await?;
    }
    Ok(recovered)
}

/// Recovers every expired lease on this worker's queues. Returns how many tasks went back.
pub(crate) async fn reap_once(shared: &Shared) -> Result<usize, celeriac::BrokerError> {
    let mut recovered = 0;
    for queue in &shared.queues() {
        recovered += shared.broker.recover_expired_on(queue, Some(&shared.config.id)).await?;
    }
    Ok(recovered)
}

/// Enqueues the first members of the workflows whose start was cut short.
async fn finish_abandoned_workflow_starts(shared: &Shared) -> Result<(), celeriac::BrokerError> {
    for workflow in shared.broker.finish_abandoned_starts(ABANDONED_WORKFLOW_START).await? {
        tracing::warn!(workflow = %workflow, "enqueued the first members of a workflow whose start was cut short");
    }
    Ok(())
}
