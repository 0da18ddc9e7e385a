//! A queue's flow limits as an operator declares them (`[tasks.limits.<queue>]` in the
//! settings, or `PUT /queues/{queue}/limits`): a rate with its burst, a concurrency cap, and the
//! same per key, each checked with an error that names its field. Plain data: the broker
//! stores and enforces them (`broker/limits.rs`, claim.lua), and the settings check them
//! without depending on it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most tasks a rate may allow per period, a burst, or a cap.
pub const MAX_LIMIT: u32 = 1_000_000;

/// A queue's limits as an operator declares them (settings `[tasks.limits.<queue>]`, or
/// `PUT /queues/{queue}/limits`). Each is optional; none at all means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueueLimits {
    /// Most tasks handed out per period, across all workers: `<count>/<unit>` with a unit of
    /// `s`, `min`, `h` or `day`, such as `100/s`, `20/min` or `5000/h`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "100/s",
            pattern = "^([1-9][0-9]{0,5}|1000000)/(s|sec|second|m|min|minute|h|hour|d|day)$"
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// With a rate: how many tasks may go out at once after a quiet spell, and so how far a
    /// late claim may catch up (default: the rate's tasks in 50 ms, at least 1, so that a
    /// worker waking a millisecond late does not lose that millisecond's share of the rate).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Most tasks of the queue running (leased to workers) at once, across all workers.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The rate each key gets for itself (a task's `limit_key`, else its task name: limits
    /// per customer, or per task type), written as `rate`. A task of a key without a token
    /// waits, `SCHEDULED`, for the key's next one.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "5/s", pattern = "^([1-9][0-9]{0,5}|1000000)/(s|sec|second|m|min|minute|h|hour|d|day)$")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_rate: Option<String>,
    /// With a key rate: each key's burst (default as for `burst`).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_burst: Option<u32>,
    /// Most tasks of one key running at once, for each key. A task whose key's slots are all
    /// in use waits, `PENDING`, until one of them is freed.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_concurrency: Option<u32>,
}

/// A limit that cannot be used: the field (`rate`, `burst`, `concurrency`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub field: &'static str,
    pub message: String,
}

pub(crate) fn refuse(field: &'static str, message: impl Into<String>) -> LimitError {
    LimitError {
        field,
        message: message.into(),
    }
}

/// A parsed rate: `count` tasks per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Rate {
    /// Parses `100/s`, `20/min`, `5000/h`, `1/day` (also `sec`, `second`, `m`, `minute`,
    /// `hour`, `d`).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let wrong = || {
            format!("must be <count>/<unit> with a count from 1 to {MAX_LIMIT} and a unit of s, min, h or day, such as 100/s; got {text:?}")
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(wrong)?;
        let count: u32 = count.trim().parse().map_err(|_| wrong())?;
        if !(1..=MAX_LIMIT).contains(&count) {
            return Err(wrong());
        }
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3_600,
            "d" | "day" => 86_400,
            _ => return Err(wrong()),
        };
        Ok(Rate {
            count,
            period: Duration::from_secs(secs),
        })
    }

    /// The burst when none is given: the tasks of 50 ms, at least 1.
    pub fn default_burst(&self) -> u32 {
        ((f64::from(self.count) * 0.05 / self.period.as_secs_f64()).ceil() as u32).max(1)
    }

    /// Microseconds between two tasks, for a share of `shards` of the rate.
    pub(crate) fn interval_us(&self, shards: u32) -> f64 {
        self.period.as_micros() as f64 * f64::from(shards) / f64::from(self.count)
    }
}

impl QueueLimits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.rate.is_none() && self.concurrency.is_none() && self.key_rate.is_none() && self.key_concurrency.is_none()
    }

    /// Checks every field; the error names the one that is wrong. Returns the parsed rate and
    /// key rate.
    pub fn validate(&self) -> Result<(Option<Rate>, Option<Rate>), LimitError> {
        let rate = checked_rate(&self.rate, self.burst, "rate", "burst")?;
        let key_rate = checked_rate(&self.key_rate, self.key_burst, "key_rate", "key_burst")?;
        for (field, cap) in [("concurrency", self.concurrency), ("key_concurrency", self.key_concurrency)] {
            if let Some(cap) = cap
                && !(1..=MAX_LIMIT).contains(&cap)
            {
                return Err(refuse(field, format!("must be from 1 to {MAX_LIMIT}")));
            }
        }
        Ok((rate, key_rate))
    }
}

/// A rate and its burst, checked, naming `field` or `burst_field`.
fn checked_rate(
    rate: &Option<String>,
    burst: Option<u32>,
    field: &'static str,
    burst_field: &'static str,
) -> Result<Option<Rate>, LimitError> {
    let rate = rate.as_deref().map(Rate::parse).transpose().map_err(|m| refuse(field, m))?;
    if let Some(burst) = burst {
        if rate.is_none() {
            return Err(refuse(burst_field, format!("is the burst of a rate: set {field} too")));
        }
        if !(1..=MAX_LIMIT).contains(&burst) {
            return Err(refuse(burst_field, format!("must be from 1 to {MAX_LIMIT}")));
        }
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_every_unit_and_bad_ones_are_named() {
        assert_eq!(Rate::parse("100/s").unwrap().count, 100);
        assert_eq!(Rate::parse("20/min").unwrap().period, Duration::from_secs(60));
        assert_eq!(Rate::parse("5000/h").unwrap().period, Duration::from_secs(3600));
        assert_eq!(Rate::parse("1/day").unwrap().period, Duration::from_secs(86_400));
        for bad in ["100/fortnight", "0/s", "abc/s", "100", "", "-1/s", "2000000/s"] {
            let e = Rate::parse(bad).unwrap_err();
            assert!(e.contains("<count>/<unit>"), "{bad}: {e}");
        }
        let limits = QueueLimits {
            rate: Some("100/fortnight".into()),
            ..Default::default()
        };
        assert_eq!(limits.validate().unwrap_err().field, "rate");
        let limits = QueueLimits {
            burst: Some(5),
            ..Default::default()
        };
        assert_eq!(limits.validate().unwrap_err().field, "burst");
        let limits = QueueLimits {
            concurrency: Some(0),
            ..Default::default()
        };
        assert_eq!(limits.validate().unwrap_err().field, "concurrency");
    }

    #[test]
    fn a_rate_is_shared_between_shards() {
        let rate = Rate::parse("100/s").unwrap();
        assert_eq!(rate.interval_us(1), 10_000.0);
        assert_eq!(rate.interval_us(4), 40_000.0);
        assert_eq!(rate.default_burst(), 5);
        assert_eq!(Rate::parse("20/min").unwrap().default_burst(), 1);
    }
}
