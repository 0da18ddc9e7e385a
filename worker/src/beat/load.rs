//! Writing the settings' schedules to Redis when a beat starts. Each gets its queue resolved
//! (its own, else the task's route, else the built-in or registered task's queue, else
//! `default`), so every beat and the gateway read one concrete queue, and so one id per
//! occurrence. An unchanged definition keeps its state; schedules that came from the settings
//! and are gone from the file are removed. Beats with different settings files would undo
//! each other's changes: run every beat of a deployment with the same file.

use std::collections::HashSet;

use celeriac::broker::{PutOutcome, ScheduleSource};
use celeriac::catalog::Catalog;
use celeriac::{Broker, BrokerError};

use super::BeatConfig;

pub(crate) async fn settings_schedules(broker: &Broker, catalog: &Catalog, config: &BeatConfig) -> Result<(), BrokerError> {
    for def in &config.schedules {
        let mut def = def.clone();
        if def.queue.is_none() {
            def.queue = Some(catalog.route_name(broker, &def.task).await.to_string());
        }
        match broker.put_schedule(&def, ScheduleSource::Settings).await? {
            PutOutcome::Created => tracing::info!(schedule = %def.name, "schedule added from the settings"),
            PutOutcome::Replaced => tracing::info!(schedule = %def.name, "schedule updated from the settings"),
            PutOutcome::Unchanged | PutOutcome::Refused => {}
        }
    }
    let names: HashSet<&str> = config.schedules.iter().map(|d| d.name.as_str()).collect();
    for entry in broker.schedules().await? {
        if entry.source == ScheduleSource::Settings && !names.contains(entry.def.name.as_str()) {
            broker.delete_schedule(&entry.def.name, ScheduleSource::Settings).await?;
            tracing::info!(schedule = %entry.def.name, "schedule removed: no longer in the settings");
        }
    }
    Ok(())
}
