//! Diagnostic tasks for operators, tests and benchmarks, in the spirit of Celery's tutorial
//! tasks: `noop`, `echo`, `add`, `sleep` (with progress) and `fail`.

use std::time::Duration;

use celeriac::builtin::{self, FailArgs, SleepArgs};
use celeriac::{QueueName, Task, TaskContext, TaskError, TaskOptions, TaskSpec};
use serde_json::{Number, Value};

fn spec(name: &str) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        queue: QueueName::parse("default").expect("valid"),
        options: TaskOptions::default(),
    }
}

/// Does nothing and returns null: the cheapest possible task, for measuring the system.
#[derive(Debug, Default)]
pub struct Noop;

impl Task for Noop {
    type Args = Value;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        spec(builtin::NOOP)
    }

    async fn run(&self, _ctx: TaskContext, _args: Value) -> Result<Value, TaskError> {
        Ok(Value::Null)
    }
}

/// Returns its arguments unchanged.
#[derive(Debug, Default)]
pub struct Echo;

impl Task for Echo {
    type Args = Value;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        spec(builtin::ECHO)
    }

    async fn run(&self, _ctx: TaskContext, args: Value) -> Result<Value, TaskError> {
        Ok(args)
    }
}

/// The sum of a list of numbers: an integer when every number is one, else a float.
#[derive(Debug, Default)]
pub struct Add;

impl Task for Add {
    type Args = Vec<Number>;
    type Output = Number;

    fn spec(&self) -> TaskSpec {
        spec(builtin::ADD)
    }

    async fn run(&self, _ctx: TaskContext, numbers: Vec<Number>) -> Result<Number, TaskError> {
        sum(&numbers)
    }
}

fn sum(numbers: &[Number]) -> Result<Number, TaskError> {
    let integers: Option<Vec<i64>> = numbers.iter().map(Number::as_i64).collect();
    if let Some(integers) = integers {
        return integers
            .iter()
            .try_fold(0i64, |acc, n| acc.checked_add(*n))
            .map(Number::from)
            .ok_or_else(|| TaskError::permanent("the sum overflows a 64-bit integer").with_kind("Overflow"));
    }
    let total: f64 = numbers.iter().filter_map(Number::as_f64).sum();
    Number::from_f64(total).ok_or_else(|| TaskError::permanent("the sum is not a finite number").with_kind("Overflow"))
}

/// Sleeps `ms` milliseconds in ten steps (holding its thread with `blocking`), reporting
/// progress after each; stops early when cancelled (revoke, soft time limit, shutdown).
#[derive(Debug, Default)]
pub struct Sleep;

impl Task for Sleep {
    type Args = SleepArgs;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        spec(builtin::SLEEP)
    }

    async fn run(&self, ctx: TaskContext, args: SleepArgs) -> Result<Value, TaskError> {
        const STEPS: u64 = 10;
        let step = Duration::from_millis(args.ms) / STEPS as u32;
        for i in 1..=STEPS {
            let cancelled = || {
                TaskError::permanent(format!("cancelled after {} of {} ms", step.as_millis() as u64 * (i - 1), args.ms))
                    .with_kind("Cancelled")
            };
            if args.blocking {
                // Holds the runtime thread, as a CPU-bound handler would.
                std::thread::sleep(step);
                if ctx.is_cancelled() {
                    return Err(cancelled());
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(step) => {}
                    _ = ctx.cancellation().cancelled() => return Err(cancelled()),
                }
            }
            if args.ms >= 100 || i == STEPS {
                let message = format!("slept {} of {} ms", step.as_millis() as u64 * i, args.ms);
                ctx.progress(i, STEPS, Some(&message))
                    .await
                    .map_err(|e| TaskError::retryable(format!("could not report progress: {e}")))?;
            }
        }
        Ok(serde_json::json!({ "slept_ms": args.ms }))
    }
}

/// Fails with the given message: permanent unless `retryable` is set.
#[derive(Debug, Default)]
pub struct Fail;

impl Task for Fail {
    type Args = FailArgs;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        spec(builtin::FAIL)
    }

    async fn run(&self, _ctx: TaskContext, args: FailArgs) -> Result<Value, TaskError> {
        let error = if args.retryable {
            TaskError::retryable(args.message)
        } else {
            TaskError::permanent(args.message)
        };
        Err(error.with_kind("Fail"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: Value) -> Vec<Number> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn add_sums_integers_exactly_and_floats_as_floats() {
        assert_eq!(sum(&n(serde_json::json!([2, 2]))).unwrap(), Number::from(4));
        assert_eq!(sum(&n(serde_json::json!([]))).unwrap(), Number::from(0));
        assert_eq!(sum(&n(serde_json::json!([1, 0.5]))).unwrap().as_f64(), Some(1.5));
        assert_eq!(sum(&n(serde_json::json!([i64::MAX, 1]))).unwrap_err().kind, "Overflow");
    }

    #[tokio::test]
    async fn sleep_stops_when_cancelled() {
        let ctx = TaskContext::detached(celeriac::TaskId::generate(&QueueName::parse("default").unwrap()));
        ctx.cancellation().cancel();
        let e = Sleep
            .run(
                ctx,
                SleepArgs {
                    ms: 10_000,
                    blocking: false,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, "Cancelled");
    }
}
