//! Celeriac's core library: the task model, the Redis broker (key names, Lua scripts and
//! their typed calls), settings and telemetry. Task authors depend on this crate, and on
//! `celeriac-worker` to run their tasks.

pub mod backoff;
pub mod broker;
pub mod builtin;
pub mod call;
pub mod catalog;
pub mod clock;
pub mod context;
pub mod digest;
pub mod handler;
pub mod http_url;
pub mod id;
pub mod keys;
pub mod limits;
pub mod metrics;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod payload;
pub mod reconnect;
pub mod record;
pub mod remote;
pub mod run_token;
pub mod schedule;
pub mod settings;
pub mod shutdown;
pub mod signing;
pub mod state;
pub mod task;
pub mod telemetry;
pub mod tls;
pub mod trace;
pub mod workflow;

pub use broker::{Broker, BrokerError};
pub use context::TaskContext;
pub use handler::Task;
pub use id::{QueueName, TaskId};
pub use record::{Progress, TaskRecord, WebhookDelivery};
pub use settings::Settings;
pub use state::TaskState;
pub use task::{TaskError, TaskOptions, TaskSpec};
