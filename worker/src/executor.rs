//! The worker's core step: run one delivered task to an outcome. It applies the time limits,
//! turns a panic into a `FAILURE` with its message (the worker lives on), and decides between
//! `SUCCESS`, `RETRY` with backoff, and `FAILURE`. Tests call [`execute`] directly.

use std::time::Duration;

use celeriac::broker::{Delivery, Outcome, Verdict};
use celeriac::{Broker, TaskContext, TaskError, TaskOptions};
use tokio_util::sync::CancellationToken;

use crate::backoff::retry_delay;
use crate::registry::Registry;

/// How a run ended, before it is stored.
#[derive(Debug)]
pub enum Execution {
    /// Store this outcome.
    Settled(Outcome),
    /// The run was stopped by a shutdown: give the task back untouched.
    Interrupted(Delivery),
}

/// The ways a run can be told to stop.
#[derive(Debug, Clone, Default)]
pub struct RunSignals {
    /// The task's own cancellation token: fired by a revoke or the soft time limit; the task
    /// decides how to stop.
    pub cancel: CancellationToken,
    /// Stops the run at once (revoke with `terminate`); it is stored as revoked.
    pub terminate: CancellationToken,
    /// Stops the run at once and gives the task back untouched (shutdown past the grace period).
    pub abort: CancellationToken,
}

/// Runs `delivery` with the handler registered under its name, under its time limits and the
/// given signals.
pub async fn execute(registry: &Registry, broker: &Broker, worker: &str, delivery: Delivery, signals: RunSignals) -> Execution {
    let RunSignals { cancel, terminate, abort } = signals;
    let Some(registered) = registry.get(&delivery.name) else {
        let error =
            TaskError::permanent(format!("no task named {:?} is registered with this worker", delivery.name)).with_kind("NotRegistered");
        return settle(broker, delivery, &TaskOptions::worker_defaults(), Err(error));
    };
    let options = delivery.options.or(&registered.spec.options).or(&TaskOptions::worker_defaults());
    let ctx = TaskContext::leased(
        delivery.id.clone(),
        delivery.retries + 1,
        cancel.clone(),
        broker.clone(),
        worker.to_owned(),
        delivery.delivery,
    );
    let run = tokio::spawn(registered.run(ctx, &delivery.args));
    let stopper = run.abort_handle();
    let _soft = options.soft_time_limit.map(|secs| {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            cancel.cancel();
        })
        .abort_handle()
    });
    let _soft_guard = _soft.map(AbortOnDrop);
    let hard_limit = options.time_limit.map(Duration::from_secs_f64).unwrap_or(Duration::MAX);
    // Biased: a shutdown abort wins over everything, so a deploy never records a failure.
    let result = tokio::select! {
        biased;
        _ = abort.cancelled() => {
            stopper.abort();
            return Execution::Interrupted(delivery);
        }
        _ = terminate.cancelled() => {
            stopper.abort();
            Err(TaskError::permanent("stopped by a revoke").with_kind("Revoked"))
        }
        joined = run => match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(TaskError::permanent(panic_message(e.into_panic())).with_kind("Panic")),
            Err(_) => Err(TaskError::permanent("the run was cancelled").with_kind("Cancelled")),
        },
        _ = tokio::time::sleep(hard_limit) => {
            stopper.abort();
            Err(TaskError::permanent(format!("stopped after the hard time limit of {}s", options.time_limit.unwrap_or_default())).with_kind("TimeLimitExceeded"))
        }
    };
    if abort.is_cancelled() {
        return Execution::Interrupted(delivery);
    }
    settle(broker, delivery, &options, result)
}

/// Decides what to store: retryable errors retry while the budget lasts.
fn settle(broker: &Broker, delivery: Delivery, options: &TaskOptions, result: Result<String, TaskError>) -> Execution {
    let verdict = match result {
        Ok(json) => Verdict::Success(json),
        Err(error) => {
            if error.retryable && delivery.retries < options.max_retries.unwrap_or(0) {
                let delay = retry_delay(options, delivery.retries, fastrand::f64());
                Verdict::Retry {
                    error,
                    due_ms: broker.clock().now_ms() + delay.as_millis() as i64,
                }
            } else {
                Verdict::Failure(error)
            }
        }
    };
    Execution::Settled(Outcome {
        id: delivery.id,
        delivery: delivery.delivery,
        verdict,
    })
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    format!("the task panicked: {text}")
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
