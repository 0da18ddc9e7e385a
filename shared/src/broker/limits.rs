//! Flow limits of a queue: a rate limit (`100/s`, with a burst) and a concurrency cap (at
//! most N tasks leased to all workers at once), enforced by claim.lua, the one script that
//! hands tasks out, so they hold however many workers run. A queue's limits live in its
//! limits hash ([`crate::Keys::limits`]) under its hash tag; a queue without limits has no
//! such hash and its claim pays one key more in the `EXISTS` it already makes.
//!
//! A held-back task waits in Redis (in its pending list); the claim says why, and the worker
//! sleeps until the next token or blocks on the queue's freed-slots list, which the scripts
//! that end leases push to (slots.lua). A sharded queue's shards each get a share of its
//! limits. The limits as declared and their checks are the model's ([`crate::limits`]); this
//! module stores them and reads where they stand. See docs/design.md ("Rate limits and
//! concurrency caps").

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Broker, BrokerError, Hold, scripts};
use crate::id::QueueName;
use crate::limits::{QueueLimits, Rate, refuse};

/// A queue's limits and where they stand, as `GET /queues` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitsView {
    /// The limits as declared for the whole queue.
    #[serde(flatten)]
    pub declared: QueueLimits,
    /// `settings` (declared in a process's settings) or `api` (set by an operator; settings
    /// never replace it).
    pub source: String,
    /// With a rate: tokens free now (tasks that could be handed out at once).
    pub tokens: Option<u64>,
    /// With a concurrency cap: slots in use (tasks leased to workers).
    pub running: Option<u64>,
    /// Why pending tasks are held back now: `rate` or `concurrency`; null when they are not.
    pub held: Option<String>,
    /// With key limits: tasks waiting for their key's slot (`PENDING`, parked). Tasks waiting
    /// for their key's next token are among the queue's scheduled ones.
    pub parked: Option<u64>,
}

impl LimitsView {
    /// The view of a sharded queue from two of its shards' (either may have none): the
    /// declared limits of the first, tokens and slots added up, held if either is.
    pub(crate) fn merged(a: Option<LimitsView>, b: Option<LimitsView>) -> Option<LimitsView> {
        let (mut a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => return a.or(b),
        };
        let add = |x: Option<u64>, y: Option<u64>| match (x, y) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        };
        a.tokens = add(a.tokens, b.tokens);
        a.running = add(a.running, b.running);
        a.held = a.held.or(b.held);
        a.parked = add(a.parked, b.parked);
        Some(a)
    }

    /// This view with the count of the parked set (shown with key limits only).
    pub(crate) fn with_parked(mut self, parked: u64) -> LimitsView {
        if self.declared.key_concurrency.is_some() || parked > 0 {
            self.parked = Some(parked);
        }
        self
    }
}

/// One shard's limits hash, as read.
#[derive(Debug, Default)]
pub(crate) struct LimitsHash(pub(crate) HashMap<String, String>);

impl LimitsHash {
    fn number(&self, field: &str) -> Option<f64> {
        self.0.get(field).and_then(|v| v.parse().ok())
    }

    /// What holds this shard's pending tasks back at `now_ms`, if anything, as claim.lua
    /// would decide.
    pub(crate) fn hold(&self, now_ms: i64) -> Option<Hold> {
        if let Some(tokens) = self.tokens(now_ms)
            && tokens < 1.0
        {
            let interval = self.number("interval")?;
            let tolerance = self.number("burst").unwrap_or(1.0) * interval;
            let tat = self.number("tat").unwrap_or(0.0).max(now_ms as f64 * 1000.0);
            let wait_us = tat + interval - tolerance - now_ms as f64 * 1000.0;
            return Some(Hold::Rate {
                wait: Duration::from_micros(wait_us.max(0.0) as u64),
            });
        }
        match (self.number("cap"), self.number("running")) {
            (Some(cap), running) if running.unwrap_or(0.0) >= cap => Some(Hold::Concurrency),
            _ => None,
        }
    }

    /// Tokens free at `now_ms` (fractional), with a rate.
    fn tokens(&self, now_ms: i64) -> Option<f64> {
        let interval = self.number("interval")?;
        let burst = self.number("burst").unwrap_or(1.0);
        let now = now_ms as f64 * 1000.0;
        let tat = self.number("tat").unwrap_or(0.0).max(now);
        Some(((now + burst * interval - tat) / interval).floor().clamp(0.0, burst))
    }

    /// The view of a queue whose shards have these hashes (`None` without limits).
    pub(crate) fn view(shards: &[LimitsHash], now_ms: i64) -> Option<LimitsView> {
        let first = shards.iter().find(|h| h.0.contains_key("declared"))?;
        let declared: QueueLimits = serde_json::from_str(&first.0["declared"]).unwrap_or_default();
        let sum = |f: &dyn Fn(&LimitsHash) -> Option<f64>| -> Option<u64> {
            let values: Vec<f64> = shards.iter().filter_map(f).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() as u64)
        };
        let held = shards.iter().find_map(|h| h.hold(now_ms)).map(|hold| match hold {
            Hold::Rate { .. } => "rate".to_owned(),
            Hold::Concurrency => "concurrency".to_owned(),
        });
        Some(LimitsView {
            tokens: declared.rate.is_some().then(|| sum(&|h| h.tokens(now_ms))).flatten(),
            running: declared
                .concurrency
                .is_some()
                .then(|| sum(&|h| h.number("running").map(|r| r.max(0.0))))
                .flatten(),
            source: first.0.get("source").cloned().unwrap_or_else(|| "settings".into()),
            declared,
            held,
            parked: None,
        })
    }
}

/// Who sets a queue's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsSource {
    /// A process's settings, at start: never replaces what an operator set.
    Settings,
    /// An operator, through the admin API.
    Api,
}

impl LimitsSource {
    fn as_str(self) -> &'static str {
        match self {
            LimitsSource::Settings => "settings",
            LimitsSource::Api => "api",
        }
    }
}

/// Whether [`Broker::set_limits`] changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsOutcome {
    Set,
    /// Declared by settings over limits an operator set: left as the operator set them.
    KeptOperators,
}

impl Broker {
    /// Sets `queue`'s limits (every shard its share; no limit at all clears them). A
    /// concurrency cap must leave each shard at least one slot.
    pub async fn set_limits(&self, queue: &QueueName, limits: &QueueLimits, source: LimitsSource) -> Result<LimitsOutcome, BrokerError> {
        let (rate, key_rate) = limits.validate().map_err(BrokerError::InvalidLimit)?;
        let shards = self.shards_of(queue).await?;
        let n = shards.len() as u32;
        for (field, cap) in [("concurrency", limits.concurrency), ("key_concurrency", limits.key_concurrency)] {
            if cap.is_some_and(|cap| cap < n) {
                return Err(BrokerError::InvalidLimit(refuse(
                    field,
                    format!("must be at least the queue's number of shards ({n}), one slot each"),
                )));
            }
        }
        // Stored as it holds: with the default bursts filled in.
        let limits = &QueueLimits {
            burst: limits.burst.or(rate.map(|r| r.default_burst())),
            key_burst: limits.key_burst.or(key_rate.map(|r| r.default_burst())),
            ..limits.clone()
        };
        let declared = serde_json::to_string(limits).expect("limits serialize");
        let mut outcome = LimitsOutcome::Set;
        for (i, shard) in shards.iter().enumerate() {
            self.remember_queue(shard).await?;
            let interval = |rate: Option<Rate>| rate.map(|r| format!("{:.0}", r.interval_us(n).max(1.0))).unwrap_or_default();
            let burst = |burst: Option<u32>| burst.map(|b| b.div_ceil(n).max(1).to_string()).unwrap_or_default();
            // A cap's slots spread over the shards, the first ones taking the remainder.
            let cap = |cap: Option<u32>| cap.map(|c| (c / n + u32::from((i as u32) < c % n)).to_string()).unwrap_or_default();
            let args = [
                interval(rate),
                burst(limits.burst),
                cap(limits.concurrency),
                declared.clone(),
                source.as_str().to_owned(),
                "0".to_owned(),
                interval(key_rate),
                burst(limits.key_burst),
                cap(limits.key_concurrency),
            ];
            if self.put_limits(shard, &args).await? == 0 {
                outcome = LimitsOutcome::KeptOperators;
            }
        }
        Ok(outcome)
    }

    /// Removes `queue`'s limits (every shard): its tasks go out as fast as workers take them.
    pub async fn clear_limits(&self, queue: &QueueName) -> Result<(), BrokerError> {
        let clear = ["", "", "", "", "api", "1", "", "", ""].map(str::to_owned);
        for shard in self.shards_of(queue).await? {
            self.put_limits(&shard, &clear).await?;
        }
        Ok(())
    }

    /// One call of limits_put.lua on one shard, read again while workers take leases.
    async fn put_limits(&self, shard: &QueueName, args: &[String; 9]) -> Result<i64, BrokerError> {
        loop {
            let holders = self.lease_holders(shard).await?;
            let mut call = scripts::LIMITS_PUT.prepare_invoke();
            call.key(self.keys.limits(shard))
                .key(self.keys.leases(shard))
                .key(self.keys.slots_freed(shard));
            for w in &holders {
                call.key(self.keys.inflight(shard, w));
            }
            for a in args {
                call.arg(a);
            }
            for w in &holders {
                call.arg(w);
            }
            let answer: i64 = call.invoke_async(&mut self.conn.clone()).await?;
            if answer >= 0 {
                return Ok(answer);
            }
        }
    }

    /// Sets the limits a process's settings declare, at its start; limits an operator set
    /// through the API stay.
    pub async fn apply_declared_limits(&self, declared: &std::collections::BTreeMap<QueueName, QueueLimits>) -> Result<(), BrokerError> {
        for (queue, limits) in declared {
            if self.set_limits(queue, limits, LimitsSource::Settings).await? == LimitsOutcome::KeptOperators {
                tracing::info!(queue = %queue, "limits set through the API kept over the settings'");
            }
        }
        Ok(())
    }

    /// `queue`'s limits and where they stand (`None` without limits).
    pub async fn limits(&self, queue: &QueueName) -> Result<Option<LimitsView>, BrokerError> {
        let shards = self.shards_of(queue).await?;
        let mut pipe = redis::pipe();
        for shard in &shards {
            pipe.hgetall(self.keys.limits(shard)).zcard(self.keys.parked(shard));
        }
        let replies: Vec<(HashMap<String, String>, u64)> = pipe.query_async(&mut self.conn.clone()).await?;
        let now = self.clock.now_ms();
        Ok(replies.into_iter().fold(None, |all, (hash, parked)| {
            let one = LimitsHash::view(&[LimitsHash(hash)], now).map(|v| v.with_parked(parked));
            LimitsView::merged(all, one)
        }))
    }

    /// Why a task of a key-limited queue waits, if its key holds it back: parked for its key's
    /// slot (a `PENDING` task), or scheduled for its key's next token (a `SCHEDULED` one).
    pub async fn key_hold(&self, id: &crate::id::TaskId, state: crate::state::TaskState, key: &str) -> Result<Option<String>, BrokerError> {
        use crate::state::TaskState;
        let mut conn = self.conn.clone();
        match state {
            TaskState::Pending => {
                let score: Option<f64> = conn.zscore(self.keys.parked(id.queue()), format!("{key}\n{}", id.suffix())).await?;
                Ok(score.map(|_| format!("held back by the concurrency cap of its key {key:?}: every slot of the key is in use")))
            }
            TaskState::Scheduled => {
                let reserved: bool = conn.hexists(self.keys.task(id), "kr").await?;
                Ok(reserved.then(|| format!("waiting for the next token of its key {key:?} under the key rate limit (at its eta)")))
            }
            _ => Ok(None),
        }
    }

    /// What holds `queue`'s (one shard's) pending tasks back now, if anything.
    pub async fn hold_of(&self, shard: &QueueName) -> Result<Option<Hold>, BrokerError> {
        let hash: HashMap<String, String> = self.conn.clone().hgetall(self.keys.limits(shard)).await?;
        Ok(LimitsHash(hash).hold(self.clock.now_ms()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_says_what_holds_tasks_back() {
        let now = 1_000_000;
        let hash = |pairs: &[(&str, &str)]| LimitsHash(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let full = hash(&[
            ("declared", r#"{"concurrency":2}"#),
            ("cap", "2"),
            ("running", "2"),
            ("source", "api"),
        ]);
        let view = LimitsHash::view(&[full], now).unwrap();
        assert_eq!(view.held.as_deref(), Some("concurrency"));
        assert_eq!(view.running, Some(2));
        assert_eq!(view.source, "api");
        let spent = hash(&[
            ("declared", r#"{"rate":"100/s"}"#),
            ("interval", "10000"),
            ("tat", &((now + 5) * 1000).to_string()),
        ]);
        assert_eq!(
            spent.hold(now),
            Some(Hold::Rate {
                wait: Duration::from_millis(5)
            })
        );
        let view = LimitsHash::view(&[spent], now).unwrap();
        assert_eq!((view.held.as_deref(), view.tokens), (Some("rate"), Some(0)));
        assert!(LimitsHash::view(&[LimitsHash::default()], now).is_none());
    }
}
