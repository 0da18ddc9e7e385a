//! Celeriac's worker runtime and built-in tasks.
//!
//! A worker binary builds a [`Registry`] of task types and runs a [`Worker`] on it; the
//! runtime fetches from per-queue Redis lists, runs tasks under their time limits, stores
//! outcomes, keeps its leases alive and recovers the tasks of crashed workers. The
//! [`Beat`] fires periodic schedules (`celeriac-beat`).

mod acker;
pub use celeriac::backoff;
pub mod beat;
pub mod cli;
pub mod config;
mod control;
pub mod executor;
mod fetcher;
pub mod health;
mod heartbeat;
pub mod liveness;
pub mod order;
mod ordered;
mod promoter;
#[cfg(test)]
mod readme_example;
mod reaper;
pub mod registry;
pub mod remote;
pub mod runtime;
pub mod settings;
mod shards;
mod shared;
pub mod task_type;
pub mod tasks;
pub mod webhooks;

pub use beat::settings::BeatProcessSettings;
pub use beat::{Beat, BeatConfig};
pub use config::WorkerConfig;
pub use registry::Registry;
pub use runtime::Worker;
pub use settings::WorkerProcessSettings;
