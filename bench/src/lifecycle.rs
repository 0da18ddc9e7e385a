//! The yardstick's method applied to Celeriac: one client runs the whole lifecycle through the
//! library (enqueue, fetch: claim and start in one call as a native worker does, acknowledge
//! with a stored result), in batches of 100, with
//! no worker process and no task code. Its Redis CPU per task compares one for one with
//! `../shared/limit/lifecycle_lean.py`, and, being one client with fixed batches, it runs the
//! same commands every time: the measure to use under a profiler (e.g. callgrind).

use std::time::{Duration, Instant};

use celeriac::QueueName;
use celeriac::broker::{Fetched, Outcome, Started, Verdict, new_claim_token};

use crate::measures::{Bench, email_payload, enqueue_noops};
use crate::redis_stats;

const BATCH: usize = 100;

impl Bench {
    pub async fn lifecycle(&mut self, broker: &celeriac::Broker) -> anyhow::Result<()> {
        let q = QueueName::parse("bench-lifecycle").map_err(anyhow::Error::msg)?;
        let n = self.sizes.drain;
        let mut conn = broker.connection();
        let phase = redis_stats::Phase::open(&mut conn).await?;
        enqueue_noops(broker, &q, n, BATCH, &email_payload()).await?;
        let enqueued = phase.close(&mut conn, n).await?;

        let phase = redis_stats::Phase::open(&mut conn).await?;
        let started = Instant::now();
        let mut done = 0;
        while done < n {
            let started = match broker
                .fetch(&q, "bench", BATCH, Duration::from_secs(60), &new_claim_token())
                .await?
            {
                Fetched::Started(started) if !started.is_empty() => started,
                other => anyhow::bail!("the lifecycle queue ran dry after {done} of {n} tasks: {other:?}"),
            };
            let taken = started.len();
            let outcomes: Vec<Outcome> = started
                .into_iter()
                .filter_map(|s| match s {
                    Started::Run(d) => Some(Outcome {
                        id: d.id,
                        delivery: d.delivery,
                        verdict: Verdict::Success("null".into()),
                    }),
                    Started::Skip { .. } => None,
                })
                .collect();
            anyhow::ensure!(outcomes.len() == taken, "some fetched tasks did not start");
            broker.finish(&q, "bench", &outcomes).await?;
            done += taken;
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        let drained = phase.close(&mut conn, n).await?;
        self.report.add(
            "lifecycle, one client, batches of 100: rate of fetch + start + ack",
            rate,
            "tasks/s",
        );
        self.report.add(
            "lifecycle, one client, batches of 100: Redis CPU per task, enqueue",
            enqueued.cpu_us,
            "µs",
        );
        self.report.add(
            "lifecycle, one client, batches of 100: Redis CPU per task, fetch + start + ack",
            drained.cpu_us,
            "µs",
        );
        self.report.add(
            "lifecycle, one client, batches of 100: Redis CPU per task, in all",
            enqueued.cpu_us + drained.cpu_us,
            "µs",
        );
        drained.print_profile("the lifecycle's fetch + start + ack");
        Ok(())
    }
}
