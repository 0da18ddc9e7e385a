//! Schedules in Redis: a hash of definitions by name, each tagged with its source (the settings
//! file or the API), and one state hash per schedule (cursor, paused, last run, last task id).
//! Every change is one script (`lua/schedule_*.lua`), so racing beats and API calls never
//! leave a definition without its state or move a cursor backwards.
//!
//! Merge rule: the settings file wins for the names it defines. Each beat writes the settings'
//! schedules at start (an unchanged definition keeps its state) and drops those that came
//! from the settings and are gone from the file; the API may not change or delete them.

use std::collections::HashMap;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Broker, BrokerError, scripts};
use crate::id::TaskId;
use crate::schedule::{Schedule, ScheduleDef};

/// Where a schedule was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ScheduleSource {
    /// A `[[schedules]]` table of the settings file; only the file changes it.
    Settings,
    /// `PUT /schedules/{name}`.
    Api,
}

impl ScheduleSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Settings => "settings",
            Self::Api => "api",
        }
    }
}

/// The JSON kept in the definitions hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    source: ScheduleSource,
    def: ScheduleDef,
}

/// What the beats have done with a schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleState {
    /// Every occurrence at or before this (ms) is decided: fired, or skipped as missed.
    pub cursor: Option<i64>,
    pub paused: bool,
    /// When the last run was enqueued (ms), and its task.
    pub last_run_ms: Option<i64>,
    pub last_task_id: Option<TaskId>,
    /// The occurrence (ms) the last scheduled run was for.
    pub last_occurrence_ms: Option<i64>,
}

impl ScheduleState {
    fn from_hash(h: &HashMap<String, String>) -> Self {
        let int = |k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok());
        Self {
            cursor: int("cursor"),
            paused: h.get("paused").is_some_and(|v| v == "1"),
            last_run_ms: int("last_run"),
            last_task_id: h.get("last_task_id").and_then(|v| TaskId::parse(v)),
            last_occurrence_ms: int("occurrence"),
        }
    }
}

/// A stored schedule with its state.
#[derive(Debug, Clone)]
pub struct ScheduleEntry {
    pub source: ScheduleSource,
    pub def: ScheduleDef,
    pub state: ScheduleState,
}

impl ScheduleEntry {
    /// The next occurrence after `now` (ms); `None` while paused or if the stored definition
    /// no longer parses.
    pub fn next_run_ms(&self, now: i64) -> Option<i64> {
        if self.state.paused {
            return None;
        }
        let schedule = Schedule::parse(self.def.clone()).ok()?;
        schedule.timing.next_after(self.state.cursor.unwrap_or(now).max(now))
    }
}

/// What storing a definition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Replaced,
    Unchanged,
    /// The schedule is defined in the settings file; the API cannot change it.
    Refused,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    Missing,
    Refused,
}

/// A run to record on a schedule.
#[derive(Debug, Clone)]
pub struct FiredRun {
    /// The occurrence (ms) it was for; `None` for a manual run.
    pub occurrence_ms: Option<i64>,
    pub task_id: TaskId,
}

impl Broker {
    /// Stores `def` (its queue resolved) as coming from `source`.
    pub async fn put_schedule(&self, def: &ScheduleDef, source: ScheduleSource) -> Result<PutOutcome, BrokerError> {
        debug_assert!(def.queue.is_some(), "a stored schedule has its queue resolved");
        let stored = serde_json::to_string(&Stored { source, def: def.clone() }).expect("schedule serializes");
        let code: i64 = scripts::SCHEDULE_PUT
            .key(self.keys.schedules())
            .key(self.keys.schedule_state(&def.name))
            .arg(&def.name)
            .arg(stored)
            .arg(self.clock.now_ms())
            .arg(source.as_str())
            .invoke_async(&mut self.conn.clone())
            .await?;
        match code {
            1 => Ok(PutOutcome::Created),
            2 => Ok(PutOutcome::Replaced),
            0 => Ok(PutOutcome::Unchanged),
            -1 => Ok(PutOutcome::Refused),
            other => Err(BrokerError::Protocol(format!("schedule_put returned {other}"))),
        }
    }

    /// Deletes a schedule as `caller`: the API cannot delete one from the settings; a beat
    /// (`Settings`) deletes only those.
    pub async fn delete_schedule(&self, name: &str, caller: ScheduleSource) -> Result<DeleteOutcome, BrokerError> {
        let code: i64 = scripts::SCHEDULE_DELETE
            .key(self.keys.schedules())
            .key(self.keys.schedule_state(name))
            .arg(name)
            .arg(caller.as_str())
            .invoke_async(&mut self.conn.clone())
            .await?;
        match code {
            1 => Ok(DeleteOutcome::Deleted),
            0 => Ok(DeleteOutcome::Missing),
            -1 => Ok(DeleteOutcome::Refused),
            other => Err(BrokerError::Protocol(format!("schedule_delete returned {other}"))),
        }
    }

    /// Pauses or resumes; `false` when there is no such schedule.
    pub async fn set_schedule_paused(&self, name: &str, paused: bool) -> Result<bool, BrokerError> {
        let code: i64 = scripts::SCHEDULE_PAUSE
            .key(self.keys.schedules())
            .key(self.keys.schedule_state(name))
            .arg(name)
            .arg(if paused { "1" } else { "0" })
            .arg(self.clock.now_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(code == 1)
    }

    /// Moves the cursor up to `cursor` (ms) and records `run`; `false` when the schedule was
    /// deleted meanwhile.
    pub async fn record_schedule(&self, name: &str, cursor: Option<i64>, run: Option<&FiredRun>) -> Result<bool, BrokerError> {
        let code: i64 = scripts::SCHEDULE_FIRED
            .key(self.keys.schedules())
            .key(self.keys.schedule_state(name))
            .arg(name)
            .arg(cursor.unwrap_or(0))
            .arg(run.and_then(|r| r.occurrence_ms).unwrap_or(0))
            .arg(self.clock.now_ms())
            .arg(run.map(|r| r.task_id.to_string()).unwrap_or_default())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(code == 1)
    }

    /// Every schedule, sorted by name. A definition that does not decode (written by another
    /// version) is logged and left out.
    pub async fn schedules(&self) -> Result<Vec<ScheduleEntry>, BrokerError> {
        let defs: HashMap<String, String> = self.conn.clone().hgetall(self.keys.schedules()).await?;
        let mut names: Vec<&String> = defs.keys().collect();
        names.sort();
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.hgetall(self.keys.schedule_state(name));
        }
        let states: Vec<HashMap<String, String>> = if names.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut self.conn.clone()).await?
        };
        Ok(names
            .into_iter()
            .zip(states)
            .filter_map(|(name, state)| entry(name, &defs[name], &state))
            .collect())
    }

    /// One schedule, or `None`.
    pub async fn schedule(&self, name: &str) -> Result<Option<ScheduleEntry>, BrokerError> {
        let (def, state): (Option<String>, HashMap<String, String>) = redis::pipe()
            .hget(self.keys.schedules(), name)
            .hgetall(self.keys.schedule_state(name))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(def.and_then(|d| entry(name, &d, &state)))
    }
}

fn entry(name: &str, json: &str, state: &HashMap<String, String>) -> Option<ScheduleEntry> {
    match serde_json::from_str::<Stored>(json) {
        Ok(stored) => Some(ScheduleEntry {
            source: stored.source,
            def: stored.def,
            state: ScheduleState::from_hash(state),
        }),
        Err(e) => {
            tracing::warn!(schedule = %name, error = %e, "a stored schedule does not decode; ignored");
            None
        }
    }
}
