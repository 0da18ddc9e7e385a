//! A worker binary with a task of your own, as the README shows it (the README quotes this
//! file; keep the two identical). Run it with `cargo run -p celeriac-worker --example
//! own_tasks`; the gateway then accepts `POST /tasks {"task": "resize", "args": {...}}`.

use celeriac::{QueueName, Task, TaskContext, TaskError, TaskSpec};
use celeriac_worker::cli::WorkerOptions;
use serde::Deserialize;

#[derive(Deserialize)]
struct ResizeArgs {
    url: String,
    width: u32,
}

struct Resize;

impl Task for Resize {
    type Args = ResizeArgs; // any serde type
    type Output = serde_json::Value; // any serde type

    fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: "resize".into(),
            queue: QueueName::parse("images").expect("a valid queue name"),
            options: Default::default(),
        }
    }

    async fn run(&self, ctx: TaskContext, args: ResizeArgs) -> Result<Self::Output, TaskError> {
        ctx.progress(1, 2, Some("decoded")).await.ok();
        if args.width == 0 {
            // a permanent error fails at once
            return Err(TaskError::permanent("width must be above 0"));
        }
        // ... a retryable error retries with backoff
        Err(TaskError::retryable(format!("the image store timed out fetching {}", args.url)))
    }
}

fn main() -> anyhow::Result<()> {
    // Consume the task's queue; the settings give the rest (an empty list: `worker.queues`).
    let options = WorkerOptions {
        queues: vec!["images".into()],
        ..Default::default()
    };
    celeriac_worker::cli::worker_main(options, |_settings| {
        let mut registry = celeriac_worker::Registry::new();
        registry.register(Resize);
        Ok(registry)
    })
}
