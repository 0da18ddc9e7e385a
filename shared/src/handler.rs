//! The trait a task author implements: [`Task`], a typed handler the worker runtime decodes
//! arguments for, runs with a [`TaskContext`] and stores the output of. Apart from the task
//! model (`task.rs`), because a run's context holds the broker, and the broker reads the model.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::TaskContext;
use crate::task::{TaskError, TaskSpec};

/// A typed task. Implement it, register the value with the worker runtime, and the worker
/// decodes `Args` from the stored JSON, runs [`Task::run`] and stores the `Output` as JSON.
pub trait Task: Send + Sync + 'static {
    type Args: DeserializeOwned + Send + 'static;
    type Output: Serialize + Send + 'static;

    fn spec(&self) -> TaskSpec;

    fn run(&self, ctx: TaskContext, args: Self::Args) -> impl Future<Output = Result<Self::Output, TaskError>> + Send;
}
