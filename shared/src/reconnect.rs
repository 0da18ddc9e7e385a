//! The wait between attempts against an unreachable Redis, shared by every loop that must
//! ride out an outage (fetchers, acknowledgements, event and control subscriptions, beat):
//! 100 ms, doubling to 2 s, back to 100 ms once Redis answers.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const CEILING: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// How long to wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let delay = FIRST.saturating_mul(1 << self.attempt.min(6)).min(CEILING);
        self.attempt += 1;
        delay
    }

    /// Redis answered: the next outage starts from the shortest wait again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Whether the last call was a failure (an attempt is counted).
    pub fn is_retrying(&self) -> bool {
        self.attempt > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_ceiling_and_starts_over_after_a_reset() {
        let mut b = Backoff::default();
        let waits: Vec<u128> = (0..7).map(|_| b.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert!(b.is_retrying());
        b.reset();
        assert!(!b.is_retrying());
        assert_eq!(b.next_wait(), FIRST);
    }
}
