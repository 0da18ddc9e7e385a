//! What runs a task type: a handler that takes the run's context and its arguments as JSON
//! text, and answers the result as JSON text or the error. A Rust task type
//! ([`Registry::register`](crate::Registry::register)) and a remote one (`remote/`) are
//! both one of these, so the runtime runs them alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use celeriac::{TaskContext, TaskError, TaskSpec};

/// A run of a handler: the result as JSON text, or the error.
pub type RunFuture = Pin<Box<dyn Future<Output = Result<String, TaskError>> + Send>>;

type Handler = Arc<dyn Fn(TaskContext, &str) -> RunFuture + Send + Sync>;

/// One task type: its spec and its handler.
#[derive(Clone)]
pub struct Registered {
    pub spec: TaskSpec,
    handler: Handler,
}

impl Registered {
    /// A task type run by `handler`, which takes the context and the arguments as JSON text.
    pub fn from_fn(spec: TaskSpec, handler: impl Fn(TaskContext, &str) -> RunFuture + Send + Sync + 'static) -> Self {
        Self {
            spec,
            handler: Arc::new(handler),
        }
    }

    /// Starts a run with `args` (JSON text). A handler whose arguments do not decode fails
    /// the task for good with kind `InvalidArgs`: no retry can fix them.
    pub fn run(&self, ctx: TaskContext, args: &str) -> RunFuture {
        (self.handler)(ctx, args)
    }
}
