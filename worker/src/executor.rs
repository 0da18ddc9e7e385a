//! The worker's core step: run one delivered task to an outcome. It applies the time limits,
//! turns a panic into a `FAILURE` with its message (the worker lives on), and decides between
//! `SUCCESS`, `RETRY` with backoff, and `FAILURE`. The whole run, the handler included, happens
//! in a `task` span carrying the task id and the trace it continues, so every log line of the
//! run carries them. Tests call [`execute`] directly.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use celeriac::broker::{Delivery, Outcome, Verdict};
use celeriac::trace::TraceParent;
use celeriac::{Broker, TaskContext, TaskError, TaskOptions};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::registry::Registry;
use celeriac::backoff::decide;

/// How a run ended, before it is stored.
#[derive(Debug)]
pub enum Execution {
    /// Store this outcome.
    Settled(Outcome),
    /// The run was stopped by a shutdown: give the task back untouched.
    Interrupted(Box<Delivery>),
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
/// given signals, in its `task` span.
pub async fn execute(registry: &Registry, broker: &Broker, worker: &str, delivery: Delivery, signals: RunSignals) -> Execution {
    let exporting = celeriac::telemetry::exporting();
    let span = task_span(&delivery, exporting);
    // Exported spans: the run is a child of the enqueue's span, after a span for its wait in
    // the queue, and its own context is what its handler passes on. Else a new span id.
    let trace = match delivery.traceparent.as_ref() {
        Some(parent) if exporting => {
            parent.parent_of(&span);
            export_queue_wait(&delivery, parent);
            TraceParent::of_span(&span).or_else(|| Some(parent.child()))
        }
        Some(parent) => Some(parent.child()),
        None => None,
    };
    if let (Some(parent), Some(run)) = (&delivery.traceparent, &trace) {
        span.record("trace_id", run.trace_id());
        span.record("parent_span_id", parent.span_id());
        span.record("span_id", run.span_id());
    }
    run(registry, broker, worker, delivery, signals, trace).instrument(span).await
}

/// The span of one run: `task_id` and `task`, and (recorded once known) when the task came
/// with a `traceparent`, its `trace_id`, the caller's span (`parent_span_id`) and this run's
/// own `span_id`. Marked as a consumer's for the exporter only when spans are exported (a log
/// line shows its fields, and a field costs every run).
fn task_span(delivery: &Delivery, exporting: bool) -> tracing::Span {
    let empty = tracing::field::Empty;
    if exporting {
        tracing::info_span!("task", otel.kind = "consumer", task_id = %delivery.id, task = %delivery.name, trace_id = empty, parent_span_id = empty, span_id = empty)
    } else {
        tracing::info_span!("task", task_id = %delivery.id, task = %delivery.name, trace_id = empty, parent_span_id = empty, span_id = empty)
    }
}

/// An exported span for the task's time in its queue (from its creation, or its due time, to
/// this start), a child of `parent` (the enqueue's span).
fn export_queue_wait(delivery: &Delivery, parent: &TraceParent) {
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{Span, SpanKind, Tracer};
    let Some(waited) = delivery.waited else { return };
    let end = std::time::SystemTime::now();
    let tracer = opentelemetry::global::tracer("celeriac");
    let mut span = tracer
        .span_builder("queued")
        .with_kind(SpanKind::Internal)
        .with_start_time(end - waited)
        .with_attributes([
            KeyValue::new("task_id", delivery.id.to_string()),
            KeyValue::new("queue", delivery.id.queue().to_string()),
            KeyValue::new("delivery", i64::from(delivery.delivery)),
        ])
        .start_with_context(&tracer, &parent.to_context());
    span.end_with_timestamp(end);
}

async fn run(
    registry: &Registry,
    broker: &Broker,
    worker: &str,
    delivery: Delivery,
    signals: RunSignals,
    trace: Option<TraceParent>,
) -> Execution {
    let RunSignals { cancel, terminate, abort } = signals;
    let Some(registered) = registry.resolve(broker, &delivery.name).await else {
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
        trace,
    );
    // The handler is polled here, inside the run's span, with its panic caught: no task of its
    // own (a spawn, then a wake-up of this one, for every run). Another branch winning below
    // drops it, which stops it at its next await.
    let run = AssertUnwindSafe(registered.run(ctx, &delivery.args)).catch_unwind();
    // The soft limit fires the task's token; the timer dies with this function.
    let _soft_limit = options.soft_time_limit.map(|secs| {
        let cancel = cancel.clone();
        AbortOnDrop(
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                cancel.cancel();
            })
            .abort_handle(),
        )
    });
    // When the hard limit ends the run: none without a limit (no clock read, no timer), nor
    // for one too far off to name.
    let deadline = options
        .time_limit
        .and_then(|secs| Instant::now().checked_add(Duration::from_secs_f64(secs)));
    // Biased: a shutdown abort wins over everything, so a deploy never records a failure.
    let result = tokio::select! {
        biased;
        _ = abort.cancelled() => {
            tracing::info!("interrupted by the shutdown; the task goes back to its queue");
            return Execution::Interrupted(Box::new(delivery));
        }
        _ = terminate.cancelled() => Err(TaskError::permanent("stopped by a revoke").with_kind("Revoked")),
        ran = run => match ran {
            // A handler that held its thread past the limit (no await for the timer to fire
            // at) and then returned overran it all the same.
            Ok(_) if deadline.is_some_and(|at| Instant::now() > at) => Err(time_limit_exceeded(&options)),
            Ok(result) => result,
            Err(panic) => Err(TaskError::permanent(panic_message(panic)).with_kind("Panic")),
        },
        _ = sleep_until(deadline) => Err(time_limit_exceeded(&options)),
    };
    if abort.is_cancelled() {
        tracing::info!("interrupted by the shutdown; the task goes back to its queue");
        return Execution::Interrupted(Box::new(delivery));
    }
    settle(broker, delivery, &options, result)
}

/// Decides what to store: retryable errors retry while the budget lasts.
fn settle(broker: &Broker, delivery: Delivery, options: &TaskOptions, result: Result<String, TaskError>) -> Execution {
    let verdict = match result {
        Ok(json) => {
            let verdict = broker.payload().success(json);
            match &verdict {
                Verdict::Failure(error) => tracing::warn!(kind = %error.kind, error = %error.message, "failed"),
                _ => tracing::debug!("succeeded"),
            }
            verdict
        }
        Err(error) => {
            let verdict = decide(error, options, delivery.retries, broker.clock().now_ms(), fastrand::f64());
            match &verdict {
                Verdict::Retry { error, due_ms } => {
                    tracing::info!(kind = %error.kind, error = %error.message, retry_at_ms = due_ms, "failed; will retry")
                }
                Verdict::Failure(error) => tracing::warn!(kind = %error.kind, error = %error.message, "failed"),
                Verdict::Success(_) => {}
            }
            verdict
        }
    };
    Execution::Settled(Outcome {
        id: delivery.id,
        delivery: delivery.delivery,
        verdict,
    })
}

/// Sleeps until `deadline`; without one, never, and without registering a timer.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn time_limit_exceeded(options: &TaskOptions) -> TaskError {
    TaskError::permanent(format!(
        "stopped after the hard time limit of {}s",
        options.time_limit.unwrap_or_default()
    ))
    .with_kind("TimeLimitExceeded")
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

#[cfg(test)]
mod tests {

    use celeriac::{QueueName, Task, TaskId, TaskSpec};
    use serde_json::Value;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// A task type `name` on queue `default`, with no options of its own.
    fn on_default(name: &str) -> TaskSpec {
        TaskSpec {
            name: name.into(),
            queue: QueueName::parse("default").unwrap(),
            options: Default::default(),
        }
    }

    /// Logs from inside the handler and returns the context's `traceparent`.
    struct Chatty;

    impl Task for Chatty {
        type Args = Value;
        type Output = Option<String>;

        fn spec(&self) -> TaskSpec {
            on_default("chatty")
        }

        async fn run(&self, ctx: TaskContext, _args: Value) -> Result<Option<String>, TaskError> {
            tracing::info!("hello from the handler");
            Ok(ctx.traceparent())
        }
    }

    fn delivery(traceparent: Option<&str>) -> Delivery {
        Delivery {
            id: TaskId::generate(&QueueName::parse("default").unwrap()),
            name: "chatty".into(),
            args: "null".into(),
            options: TaskOptions::default(),
            delivery: 1,
            retries: 0,
            traceparent: traceparent.and_then(TraceParent::parse),
            waited: None,
        }
    }

    /// Runs `delivery` on a current-thread runtime (so the test's log subscriber sees the
    /// handler's task too); returns the JSON log lines and the stored result.
    async fn run_logged(delivery: Delivery) -> (Vec<Value>, String) {
        let buffer = celeriac_testkit::LogCapture::default();
        let subscriber = celeriac::telemetry::subscriber(tracing_subscriber::EnvFilter::new("debug"), true, buffer.clone(), false);
        let _default = tracing::subscriber::set_default(subscriber);
        let mut registry = Registry::new();
        registry.register(Chatty);
        let broker = Broker::connect("redis://127.0.0.1:1", "unused", Duration::from_secs(60)).unwrap();
        let execution = execute(&registry, &broker, "w1", delivery, RunSignals::default()).await;
        let Execution::Settled(Outcome {
            verdict: Verdict::Success(result),
            ..
        }) = execution
        else {
            panic!("{execution:?}")
        };
        let text = buffer.contents();
        (text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), result)
    }

    #[tokio::test]
    async fn every_line_of_a_run_the_handlers_included_carries_the_task_id_and_trace() {
        let delivery = delivery(Some(TRACEPARENT));
        let id = delivery.id.to_string();
        let (lines, result) = run_logged(delivery).await;
        let handler = lines
            .iter()
            .find(|l| l["message"] == "hello from the handler")
            .expect("the handler logged");
        assert!(lines.len() >= 2, "the handler's line and the outcome's: {lines:?}");
        for line in &lines {
            let span = &line["span"];
            assert_eq!(span["task_id"], id.as_str(), "{line}");
            assert_eq!(span["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{line}");
            assert_eq!(span["parent_span_id"], "00f067aa0ba902b7", "{line}");
        }
        let run_span = handler["span"]["span_id"].as_str().unwrap();
        assert_ne!(run_span, "00f067aa0ba902b7", "the run has a span id of its own");
        let passed: Option<String> = serde_json::from_str(&result).unwrap();
        assert_eq!(
            passed.as_deref(),
            Some(format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{run_span}-01").as_str()),
            "the context hands the run's own traceparent to the handler"
        );
    }

    /// Holds its thread for 300 ms without an await, as a CPU-bound handler does, then
    /// succeeds.
    struct Blocking;

    impl Task for Blocking {
        type Args = Value;
        type Output = ();

        fn spec(&self) -> TaskSpec {
            on_default("blocking")
        }

        async fn run(&self, _ctx: TaskContext, _args: Value) -> Result<(), TaskError> {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        }
    }

    /// The handler is polled in the run's own task, so its timer cannot fire while it holds
    /// the thread: a run that returns past its hard limit still fails with it, and one within
    /// it succeeds.
    #[tokio::test]
    async fn a_handler_that_holds_its_thread_past_the_hard_limit_fails_with_it() {
        // The same kind of subscriber as the other tests here: a run on a thread without one
        // would have tracing cache the run's span as disabled for every thread, theirs too.
        let subscriber = celeriac::telemetry::subscriber(
            tracing_subscriber::EnvFilter::new("debug"),
            true,
            celeriac_testkit::LogCapture::default(),
            false,
        );
        let _default = tracing::subscriber::set_default(subscriber);
        let mut registry = Registry::new();
        registry.register(Blocking);
        let broker = Broker::connect("redis://127.0.0.1:1", "unused", Duration::from_secs(60)).unwrap();
        for (limit, expected) in [(0.1, Some("TimeLimitExceeded")), (5.0, None)] {
            let delivery = Delivery {
                name: "blocking".into(),
                options: TaskOptions {
                    time_limit: Some(limit),
                    ..Default::default()
                },
                ..delivery(None)
            };
            let execution = execute(&registry, &broker, "w1", delivery, RunSignals::default()).await;
            let Execution::Settled(Outcome { verdict, .. }) = execution else {
                panic!("{execution:?}")
            };
            let kind = match &verdict {
                Verdict::Failure(error) => Some(error.kind.as_str()),
                Verdict::Success(_) => None,
                Verdict::Retry { .. } => panic!("{verdict:?}"),
            };
            assert_eq!(kind, expected, "limit {limit}s: {verdict:?}");
        }
    }

    #[tokio::test]
    async fn a_run_without_a_trace_still_carries_its_task_id() {
        let delivery = delivery(None);
        let id = delivery.id.to_string();
        let (lines, result) = run_logged(delivery).await;
        assert!(lines.iter().any(|l| l["message"] == "hello from the handler"), "{lines:?}");
        for line in &lines {
            assert_eq!(line["span"]["task_id"], id.as_str(), "{line}");
            assert!(line["span"].get("trace_id").is_none(), "{line}");
        }
        assert_eq!(result, "null");
    }
}
