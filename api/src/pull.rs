//! The pull protocol's logic, behind `routes/runs.rs`: a worker over HTTP claims tasks with a
//! long poll and gets a signed run token per task ([`celeriac::run_token`]); every later write
//! (heartbeat, progress, complete, fail) goes through that token and is fenced by the same
//! in-flight hash as a native worker's, with the same scripts (claim, start, finish), the same
//! retry decision ([`celeriac::backoff::decide`]) and the same crash recovery: a pull worker
//! that stops beating loses its lease, and the next claim on that queue (or any native
//! worker's reaper) puts its tasks back. A claim also moves the queue's due retries and
//! countdowns to its pending list, as a native worker's promoter does. A long poll blocks on
//! the queue's list in slices of a second, looking at leases and due tasks between them.

use std::time::Duration;

use celeriac::broker::{Ack, Claim, Delivery, Outcome, QueueWaiter, Started, Verdict, WorkerInfo, new_claim_token};
use celeriac::run_token::RunToken;
use celeriac::{Progress, QueueName, TaskError, TaskOptions};

use crate::error::ApiError;
use crate::state::AppState;

/// How long one blocking wait of a long poll lasts before it looks at expired leases again,
/// so a vanished worker's tasks reach a waiting claim within about this long after its lease.
const REAP_EVERY: Duration = Duration::from_secs(1);
/// Most due tasks (retries, countdowns) moved to the pending list per look.
const PROMOTE_BATCH: usize = 1000;

/// A task handed to a pull worker.
#[derive(Debug)]
pub struct PulledRun {
    pub delivery: Delivery,
    pub token: String,
    pub deadline_ms: Option<i64>,
}

/// Claims up to `max` tasks of `queue` for `worker`, waiting up to `wait` for one to arrive.
/// Tasks that must not run (revoked, expired) are settled on the way and never handed out.
pub async fn claim(state: &AppState, queue: &QueueName, worker: &str, max: usize, wait: Duration) -> Result<Vec<PulledRun>, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    let lease = state.settings.pull.lease;
    let mut waiter = QueueWaiter::new(&state.broker, queue);
    loop {
        // The gateway does for the queue what a native worker's reaper and promoter would, so
        // a queue served only by pull workers still recovers crashed runs and runs retries.
        state.broker.recover_expired_on(queue, None).await?;
        state.broker.promote_due(queue, PROMOTE_BATCH).await?;
        let claim = state.broker.claim(queue, worker, max, lease, &new_claim_token()).await?;
        if let Claim::Ids(ids) = &claim
            && !ids.is_empty()
        {
            let runs = start(state, queue, worker, ids).await?;
            if !runs.is_empty() {
                note_worker(state, queue, worker, max).await;
                return Ok(runs);
            }
            continue;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() || state.shutdown.is_cancelled() {
            note_worker(state, queue, worker, max).await;
            return Ok(Vec::new());
        }
        // Blocks on the queue, or on what a limit waits for (no polling); a paused queue is
        // looked at again after a slice.
        let slice = left.min(REAP_EVERY);
        tokio::select! {
            waited = waiter.wait_after(&claim, slice) => { waited?; }
            _ = state.shutdown.cancelled() => {}
        }
    }
}

async fn start(state: &AppState, queue: &QueueName, worker: &str, ids: &[String]) -> Result<Vec<PulledRun>, ApiError> {
    let secret = state.run_secret().await?;
    let now = state.broker.clock().now_ms();
    let mut runs = Vec::new();
    for started in state.broker.start(queue, worker, ids).await? {
        let Started::Run(delivery) = started else { continue };
        let deadline_ms = delivery
            .options
            .time_limit
            .map(|secs| now + Duration::from_secs_f64(secs).as_millis() as i64);
        let token = RunToken {
            id: delivery.id.clone(),
            delivery: delivery.delivery,
            worker: worker.to_owned(),
            retries: delivery.retries,
            deadline_ms,
        }
        .encode(secret);
        runs.push(PulledRun {
            delivery,
            token,
            deadline_ms,
        });
    }
    Ok(runs)
}

/// Keeps the pull worker in the registry of live workers (`GET /workers`, the dashboard) for
/// one lease. Descriptive only: a failure is logged, never fatal.
async fn note_worker(state: &AppState, queue: &QueueName, worker: &str, concurrency: usize) {
    let lease = state.settings.pull.lease;
    let running = state.broker.leased(queue, worker).await.map(|ids| ids.len()).unwrap_or(0);
    let now = chrono::Utc::now();
    let known = state.broker.worker_info(worker).await.ok().flatten();
    let mut queues = known.as_ref().map(|w| w.queues.clone()).unwrap_or_default();
    if !queues.iter().any(|q| q == queue.as_str()) {
        queues.push(queue.to_string());
    }
    let info = WorkerInfo {
        id: worker.to_owned(),
        host: "pull".into(),
        pid: 0,
        // No host id: a pull worker runs elsewhere, so no worker can prove it dead by its pid
        // (liveness.rs); its lease is the proof.
        host_id: None,
        process_start: None,
        queues,
        concurrency: concurrency.max(known.as_ref().map_or(0, |w| w.concurrency)),
        running,
        processed: known.as_ref().map_or(0, |w| w.processed),
        failed: known.as_ref().map_or(0, |w| w.failed),
        started_at: known.as_ref().map_or(now, |w| w.started_at),
        last_heartbeat: now,
    };
    if let Err(e) = state.broker.register_worker(&info, lease).await {
        tracing::warn!(error = %e, worker, "cannot register a pull worker");
    }
}

/// A token's run, checked: the token is genuine and its run still holds the task. A run past
/// its hard time limit is ended here as a native one would be (`TimeLimitExceeded`, for good).
pub async fn holding_run(state: &AppState, text: &str) -> Result<RunToken, ApiError> {
    let secret = state.run_secret().await?;
    let token = RunToken::decode(secret, text).map_err(|_| ApiError::NotFound("no such run: the token is not valid".into()))?;
    if !state.broker.run_holds(&token).await? {
        return Err(lost(&token));
    }
    if let Some(deadline) = token.deadline_ms
        && state.broker.clock().now_ms() >= deadline
    {
        let error = TaskError::permanent("stopped after its hard time limit").with_kind("TimeLimitExceeded");
        store(state, &token, Verdict::Failure(error)).await?;
        return Err(ApiError::Conflict(format!(
            "the run of {} passed its hard time limit and was ended as FAILURE",
            token.id
        )));
    }
    Ok(token)
}

fn lost(token: &RunToken) -> ApiError {
    ApiError::Conflict(format!(
        "this run (delivery {}) no longer holds task {}: its lease expired or a newer run owns it",
        token.delivery, token.id
    ))
}

/// Extends the lease of the token's worker on the task's queue.
pub async fn heartbeat(state: &AppState, token: &RunToken) -> Result<(), ApiError> {
    let queue = token.id.queue();
    state
        .broker
        .renew_leases(std::slice::from_ref(queue), &token.worker, state.settings.pull.lease)
        .await?;
    note_worker(state, queue, &token.worker, 0).await;
    Ok(())
}

/// Records progress of the token's run.
pub async fn progress(state: &AppState, token: &RunToken, progress: &Progress) -> Result<(), ApiError> {
    if state
        .broker
        .report_progress(&token.id, &token.worker, token.delivery, progress)
        .await?
    {
        Ok(())
    } else {
        Err(lost(token))
    }
}

/// Ends the token's run with `SUCCESS` and `result` (JSON text), or `FAILURE` (kind
/// `ResultTooLarge`) when the result is over `tasks.max_result_bytes`.
pub async fn complete(state: &AppState, token: &RunToken, result: String) -> Result<&'static str, ApiError> {
    // A result over `tasks.max_result_bytes` ends the run as a native one: FAILURE.
    let verdict = state.broker.payload().success(result);
    let state_name = if matches!(verdict, Verdict::Success(_)) {
        "SUCCESS"
    } else {
        "FAILURE"
    };
    store(state, token, verdict).await?;
    Ok(state_name)
}

/// Ends the token's run with `error`: `RETRY` while it is retryable and the task's retry
/// budget lasts (with its backoff), else `FAILURE`.
pub async fn fail(state: &AppState, token: &RunToken, error: TaskError) -> Result<&'static str, ApiError> {
    let options = match state.broker.get(&token.id).await? {
        Some(record) => record.options,
        None => TaskOptions::default(),
    };
    let verdict = celeriac::backoff::decide(error, &options, token.retries, state.broker.clock().now_ms(), fastrand::f64());
    let state_name = if matches!(verdict, Verdict::Retry { .. }) {
        "RETRY"
    } else {
        "FAILURE"
    };
    store(state, token, verdict).await?;
    Ok(state_name)
}

/// Stores a run's outcome through the fence of `finish.lua`.
async fn store(state: &AppState, token: &RunToken, verdict: Verdict) -> Result<(), ApiError> {
    let queue = token.id.queue();
    let failed = matches!(verdict, Verdict::Failure(_));
    let outcome = Outcome {
        id: token.id.clone(),
        delivery: token.delivery,
        verdict,
    };
    let acks = state.broker.finish(queue, &token.worker, &[outcome]).await?;
    match acks.first() {
        Some(Ack::Stored) => {}
        Some(Ack::StoredWorkflowMember) => {
            if let Err(e) = state.broker.process_workflow_outbox(queue).await {
                tracing::warn!(queue = %queue, error = %e, "cannot advance workflows now; a worker's sweep will");
            }
        }
        _ => return Err(lost(token)),
    }
    if let Err(e) = state.broker.count_pull_run(&token.worker, failed).await {
        tracing::warn!(error = %e, "cannot count a pull worker's run");
    }
    Ok(())
}
