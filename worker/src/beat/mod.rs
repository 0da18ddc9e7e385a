//! The beat: fires periodic schedules. Any number of beat processes may run, with no leader:
//! each computes the due occurrences of every schedule and enqueues each with a deterministic
//! task id (`<name>@<occurrence ms>`, see `celeriac::schedule`); the enqueue script refuses an
//! id that exists, so an occurrence becomes one task however many beats fire it, and when a
//! beat dies the others have fired (or fire) the same occurrences: takeover is immediate.
//!
//! A tick reads every schedule from Redis (so API changes show within a second), plans each
//! (on-time occurrences, or one catch-up under `misfire = "once"`), fires, and records the new
//! cursor. It sleeps until the earliest next occurrence, at most one second. Redis errors are
//! retried with a backoff; the connection re-opens by itself. The stop token ends the loop.
//!
//! The limit of "exactly once": the refusal of a second enqueue needs the first task's record,
//! which expires with the result TTL (a day by default). Only if a beat crashed between
//! enqueuing an occurrence and recording it, and every beat then stayed down longer than that
//! TTL, could `misfire = "once"` fire that occurrence a second time.

mod fire;
mod load;
pub mod settings;

use std::collections::HashSet;
use std::time::Duration;

use celeriac::broker::{FiredRun, ScheduleEntry};
use celeriac::catalog::Catalog;
use celeriac::reconnect::Backoff;
use celeriac::schedule::{Schedule, ScheduleDef, plan};
use celeriac::settings::TaskSettings;
use celeriac::{Broker, BrokerError};
use tokio_util::sync::CancellationToken;

use self::fire::Fired;
use self::settings::BeatProcessSettings;

/// Longest sleep between ticks: how soon a schedule changed through the API is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Woken this long after an occurrence, so the clock has surely passed it.
const WAKE_MARGIN_MS: i64 = 2;

/// How a beat process runs.
#[derive(Debug, Clone)]
pub struct BeatConfig {
    /// The settings' schedules, written to Redis at start (the file wins for its names).
    pub schedules: Vec<ScheduleDef>,
    /// Routes (for schedules that name no queue) and queue limits (a full queue refuses an
    /// occurrence, retried next tick), as the gateway has them.
    pub tasks: TaskSettings,
    /// How late an occurrence may fire and still be on time.
    pub misfire_grace: Duration,
}

impl BeatConfig {
    pub fn from_settings(settings: &BeatProcessSettings) -> Self {
        Self {
            schedules: settings.schedules.clone(),
            tasks: settings.tasks.clone(),
            misfire_grace: settings.beat.misfire_grace,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Occurrences this process enqueued (not those another beat had enqueued first).
    pub enqueued: usize,
    /// Occurrences found enqueued already by another beat (or an earlier try of this one).
    pub already_fired: usize,
    /// The earliest next occurrence of any active schedule, ms.
    pub next_wake_ms: Option<i64>,
}

/// A beat process's scheduler.
pub struct Beat {
    broker: Broker,
    config: BeatConfig,
    /// The one enqueue path, as the gateway's.
    catalog: Catalog,
    /// Whether the settings' schedules are in Redis yet (retried until they are).
    loaded: bool,
    /// Stored schedules that do not validate, warned about once.
    invalid: HashSet<String>,
}

impl Beat {
    pub fn new(broker: Broker, config: BeatConfig) -> Self {
        Self {
            broker,
            catalog: Catalog::new(&config.tasks),
            config,
            loaded: false,
            invalid: HashSet::new(),
        }
    }

    /// Ticks until `shutdown` fires. Never gives up on Redis: errors are logged and retried.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(schedules = self.config.schedules.len(), "beat starting");
        let mut backoff = Backoff::default();
        loop {
            let outcome = tokio::select! {
                outcome = self.tick() => outcome,
                _ = shutdown.cancelled() => break,
            };
            let sleep = match outcome {
                Ok(report) => {
                    if backoff.is_retrying() {
                        tracing::info!("beat reconnected to Redis");
                    }
                    backoff.reset();
                    self.sleep_until(report.next_wake_ms)
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    tracing::warn!(error = %e, retry_in = ?wait, "beat cannot reach Redis; will retry");
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        tracing::info!("beat stopped");
    }

    fn sleep_until(&self, wake_ms: Option<i64>) -> Duration {
        let Some(wake) = wake_ms else { return MAX_SLEEP };
        let ms = (wake + WAKE_MARGIN_MS - self.broker.clock().now_ms()).max(1);
        Duration::from_millis(ms as u64).min(MAX_SLEEP)
    }

    /// One pass: load the settings' schedules if not yet done, then fire what is due now.
    pub async fn tick(&mut self) -> Result<TickReport, BrokerError> {
        if !self.loaded {
            load::settings_schedules(&self.broker, &self.catalog, &self.config).await?;
            self.loaded = true;
        }
        let now = self.broker.clock().now_ms();
        let mut report = TickReport::default();
        for entry in self.broker.schedules().await? {
            if entry.state.paused {
                continue;
            }
            let wake = self.tick_one(entry, now, &mut report).await?;
            report.next_wake_ms = match (report.next_wake_ms, wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(report)
    }

    /// Plans and fires one schedule; its next occurrence.
    async fn tick_one(&mut self, entry: ScheduleEntry, now: i64, report: &mut TickReport) -> Result<Option<i64>, BrokerError> {
        let name = entry.def.name.clone();
        let schedule = match Schedule::parse(entry.def) {
            Ok(s) => {
                self.invalid.remove(&name);
                s
            }
            Err(e) => {
                if self.invalid.insert(name.clone()) {
                    tracing::warn!(schedule = %name, field = %e.field, error = %e.message, "stored schedule is invalid; skipped");
                }
                return Ok(None);
            }
        };
        let Some(cursor) = entry.state.cursor else {
            // Only a hand-edited Redis lacks a cursor: start counting from now.
            self.broker.record_schedule(&name, Some(now), None).await?;
            return Ok(schedule.timing.next_after(now));
        };
        let queue = schedule.queue.clone().unwrap_or_else(celeriac::id::fallback_queue);
        let grace_ms = self.config.misfire_grace.as_millis() as i64;
        let plan = plan(&schedule.timing, schedule.def.misfire, cursor, now, grace_ms);
        for occurrence in &plan.fire {
            let task_id = match fire::occurrence(&self.broker, &self.catalog, &schedule, &queue, *occurrence, now).await? {
                Fired::Enqueued(task_id) => {
                    report.enqueued += 1;
                    task_id
                }
                Fired::AlreadyThere(task_id) => {
                    report.already_fired += 1;
                    task_id
                }
                // Not decided: retried at the next tick (a missed occurrence once past the grace).
                Fired::Refused => return Ok(schedule.timing.next_after(cursor.max(now))),
            };
            self.record(&name, *occurrence, task_id).await?;
        }
        let Some(new_cursor) = plan.cursor else {
            return Ok(schedule.timing.next_after(cursor.max(now)));
        };
        if plan.fire.last() != Some(&new_cursor) {
            // Missed occurrences skipped: decided, though nothing ran.
            self.broker.record_schedule(&name, Some(new_cursor), None).await?;
        }
        Ok(schedule.timing.next_after(new_cursor.max(now)))
    }

    async fn record(&self, name: &str, occurrence: i64, task_id: celeriac::TaskId) -> Result<(), BrokerError> {
        let run = FiredRun {
            occurrence_ms: Some(occurrence),
            task_id,
        };
        self.broker.record_schedule(name, Some(occurrence), Some(&run)).await?;
        Ok(())
    }
}
