//! One module per group of commands; each takes the [`crate::Context`] and its arguments,
//! calls the gateway and prints a table or, with `--json`, the gateway's answer.

pub mod actions;
pub mod call;
pub mod queues;
pub mod schedules;
pub mod tasks;
pub mod workers;
