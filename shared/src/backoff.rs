//! Whether and when a failed task runs again: pure functions of the options, the number of
//! retries so far and a random draw, so they can be tested exactly. Native workers and the
//! gateway's pull protocol (a worker over HTTP reporting a failure) decide the same way.

use std::time::Duration;

use crate::TaskOptions;
use crate::task::TaskError;
use crate::task::Verdict;

/// The longest `Retry-After` honoured (a day): a longer one waits a day.
pub const RETRY_AFTER_MAX_SECS: u64 = 86_400;

/// What to store for a failed run: `RETRY` at `now_ms` plus the backoff delay (or the error's
/// own `retry_after`, at most [`RETRY_AFTER_MAX_SECS`]) while the error is retryable and the
/// retry budget (`max_retries` of `options`, filled from the workers' defaults) lasts, else
/// `FAILURE`. `draw` is uniform in [0, 1) (see [`retry_delay`]).
pub fn decide(error: TaskError, options: &TaskOptions, retries: u32, now_ms: i64, draw: f64) -> Verdict {
    let options = options.or(&TaskOptions::worker_defaults());
    if error.retryable && retries < options.max_retries.unwrap_or(0) {
        let delay = match error.retry_after {
            Some(secs) => Duration::from_secs(secs.min(RETRY_AFTER_MAX_SECS)),
            None => retry_delay(&options, retries, draw),
        };
        Verdict::Retry {
            error,
            due_ms: now_ms + delay.as_millis() as i64,
        }
    } else {
        Verdict::Failure(error)
    }
}

/// The delay before retry number `retries + 1`. `draw` is uniform in [0, 1): with jitter the
/// delay falls between half and all of the backoff delay, which spreads a burst of failures
/// without ever retrying at once.
pub fn retry_delay(options: &TaskOptions, retries: u32, draw: f64) -> Duration {
    let options = options.or(&TaskOptions::worker_defaults());
    let base = options.retry_delay.unwrap_or(1.0);
    let ceiling = options.retry_delay_max.unwrap_or(600.0).max(base);
    let delay = if options.retry_backoff.unwrap_or(true) {
        base * 2f64.powi(retries.min(62) as i32)
    } else {
        base
    }
    .min(ceiling);
    let delay = if options.retry_jitter.unwrap_or(true) {
        delay * (0.5 + 0.5 * draw.clamp(0.0, 1.0))
    } else {
        delay
    };
    Duration::from_secs_f64(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(backoff: bool, jitter: bool) -> TaskOptions {
        TaskOptions {
            retry_delay: Some(2.0),
            retry_delay_max: Some(30.0),
            retry_backoff: Some(backoff),
            retry_jitter: Some(jitter),
            ..Default::default()
        }
    }

    #[test]
    fn exponential_backoff_doubles_up_to_the_ceiling() {
        let secs: Vec<f64> = (0..6).map(|r| retry_delay(&opts(true, false), r, 0.7).as_secs_f64()).collect();
        assert_eq!(secs, [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
    }

    #[test]
    fn fixed_delay_stays_fixed() {
        for r in 0..5 {
            assert_eq!(retry_delay(&opts(false, false), r, 0.3), Duration::from_secs(2));
        }
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        for r in 0..8 {
            let full = retry_delay(&opts(true, false), r, 0.0);
            assert_eq!(retry_delay(&opts(true, true), r, 0.0), full / 2);
            let high = retry_delay(&opts(true, true), r, 0.999_999);
            assert!(high <= full && high > full.mul_f64(0.99));
        }
    }

    #[test]
    fn a_retryable_error_retries_while_the_budget_lasts() {
        let options = TaskOptions {
            max_retries: Some(2),
            ..opts(false, false)
        };
        let retryable = TaskError::retryable("boom");
        assert_eq!(
            decide(retryable.clone(), &options, 1, 1000, 0.0),
            Verdict::Retry {
                error: retryable.clone(),
                due_ms: 3000
            }
        );
        assert_eq!(
            decide(retryable.clone(), &options, 2, 1000, 0.0),
            Verdict::Failure(retryable.clone())
        );
        assert_eq!(
            decide(retryable.clone().with_retry_after(30), &options, 0, 1000, 0.0),
            Verdict::Retry {
                error: retryable.clone().with_retry_after(30),
                due_ms: 31_000
            },
            "a Retry-After replaces the backoff"
        );
        let permanent = TaskError::permanent("no");
        assert_eq!(decide(permanent.clone(), &options, 0, 1000, 0.0), Verdict::Failure(permanent));
    }

    #[test]
    fn huge_retry_counts_do_not_overflow() {
        assert_eq!(retry_delay(&opts(true, false), u32::MAX, 0.5), Duration::from_secs(30));
    }
}
