//! The gateway's integration tests, in one test binary (one link after every change to the
//! library, instead of one per file): a module per area, all on the harness in `common`.

mod admin;
mod auth;
mod builtin_tasks;
mod common;
mod delivery;
mod errors;
mod events;
mod flow;
mod history;
mod metrics;
mod openapi;
mod options;
mod payload;
mod pull;
mod remote;
mod schedules;
mod scopes;
mod shards;
mod shutdown;
mod start_check;
mod tags;
mod tasks;
mod tracing;
mod webhooks;
mod workflows;
