//! Worker queue order, proven over thousands of tasks with an in-process worker that records
//! which queue each run came from: `strict` runs every task of an earlier queue before any of
//! a later one; `weighted` (6, 3, 1) shares the runs in proportion while every queue has work,
//! starving none; a worker in either order still wakes, without polling, for a task in any of
//! its queues after they were all empty.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use celeriac::broker::NewTask;
use celeriac::{QueueName, Task, TaskContext, TaskError, TaskSpec};
use celeriac_testkit::{RedisServer, eventually, unique_namespace};
use celeriac_worker::order::QueueOrder;
use celeriac_worker::{Registry, Worker, WorkerConfig, WorkerProcessSettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Records the queue named in its arguments, in the order runs start.
struct Mark(Arc<Mutex<Vec<String>>>);

impl Task for Mark {
    type Args = Value;
    type Output = ();

    fn spec(&self) -> TaskSpec {
        TaskSpec {
            name: "mark".into(),
            queue: QueueName::parse("default").unwrap(),
            options: Default::default(),
        }
    }

    async fn run(&self, _ctx: TaskContext, args: Value) -> Result<(), TaskError> {
        self.0.lock().unwrap().push(args.as_str().unwrap_or("").to_owned());
        Ok(())
    }
}

const QUEUES: [&str; 3] = ["critical", "default", "low"];

struct Run {
    broker: celeriac::Broker,
    seen: Arc<Mutex<Vec<String>>>,
    stop: CancellationToken,
    _redis: RedisServer,
}

/// `per_queue` tasks in each queue, then one worker with one slot (so runs start in the order
/// claimed) taking them in `order`.
async fn start(order: QueueOrder, per_queue: usize) -> Run {
    let redis = RedisServer::start();
    let broker = celeriac::Broker::connect(&redis.url(), &unique_namespace(), Duration::from_secs(600)).unwrap();
    for name in QUEUES {
        let q = QueueName::parse(name).unwrap();
        let tasks: Vec<NewTask> = (0..per_queue).map(|_| NewTask::new(&q, "mark", &json!(name))).collect();
        for chunk in tasks.chunks(500) {
            broker.enqueue(&q, chunk, 0, None).await.unwrap();
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut registry = Registry::new();
    registry.register(Mark(Arc::clone(&seen)));
    let mut config = WorkerConfig::from_settings(&WorkerProcessSettings::default());
    config.queues = QUEUES.iter().map(|q| QueueName::parse(q).unwrap()).collect();
    config.concurrency = 1;
    config.batch_size = 1;
    config.order = order;
    let stop = CancellationToken::new();
    tokio::spawn(Worker::new(broker.clone(), registry, config).run(stop.clone()));
    Run {
        broker,
        seen,
        stop,
        _redis: redis,
    }
}

impl Run {
    async fn wait_for(&self, runs: usize) -> Vec<String> {
        eventually(Duration::from_secs(120), &format!("{runs} runs"), || async {
            let seen = self.seen.lock().unwrap();
            (seen.len() >= runs).then(|| seen.clone())
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_order_runs_every_task_of_an_earlier_queue_first() {
    let per_queue = 700;
    let run = start(QueueOrder::Strict, per_queue).await;
    let seen = run.wait_for(3 * per_queue).await;
    let expected: Vec<String> = QUEUES.iter().flat_map(|q| std::iter::repeat_n(q.to_string(), per_queue)).collect();
    assert_eq!(seen, expected);
    run.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_order_shares_runs_by_weight_and_starves_none() {
    let per_queue = 1500;
    let run = start(QueueOrder::Weighted(vec![6, 3, 1]), per_queue).await;
    // While every queue still has work: the first 2000 runs (critical's share, ~1200, is
    // below its 1500).
    let counted = 2000;
    let seen = run.wait_for(counted).await;
    let count = |q: &str| seen[..counted].iter().filter(|s| *s == q).count() as f64;
    for (q, share) in QUEUES.iter().zip([0.6, 0.3, 0.1]) {
        let expected = counted as f64 * share;
        // four standard deviations of a binomial draw
        let tolerance = 4.0 * (counted as f64 * share * (1.0 - share)).sqrt();
        assert!(
            (count(q) - expected).abs() <= tolerance,
            "{q}: {} runs, expected {expected} ± {tolerance:.0}",
            count(q)
        );
    }
    run.stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_worker_blocks_on_all_its_queues_and_wakes_for_any() {
    let run = start(QueueOrder::Strict, 0).await;
    // Once it is registered, it has found every queue empty and blocks (or is about to).
    eventually(Duration::from_secs(30), "the worker registers", || async {
        run.broker.live_workers().await.ok().filter(|w| !w.is_empty())
    })
    .await;
    let q = QueueName::parse("low").unwrap();
    let began = std::time::Instant::now();
    run.broker
        .enqueue(&q, &[NewTask::new(&q, "mark", &json!("low"))], 0, None)
        .await
        .unwrap();
    assert_eq!(run.wait_for(1).await, ["low"]);
    assert!(began.elapsed() < Duration::from_secs(3), "woken by the enqueue, not a 5 s timeout");
    run.stop.cancel();
}
