//! The worker's side of the broker: claim tasks into its in-flight hash, start them, report
//! progress, finish them, or give them back. Every write of a run is fenced by its token in
//! this worker's in-flight hash: the id is still leased to it, for the delivery it started
//! (invariant 4). The hash holds the token, so the acknowledgement reads nothing of the task.

use std::borrow::Cow;
use std::time::Duration;

use redis::Value;

use super::fields::StoredSpec;
use super::{Broker, BrokerError, scripts};
use crate::id::{QueueName, TaskId};
use crate::record::Progress;
use crate::task::{TaskError, TaskOptions, Verdict};
use crate::trace::TraceParent;

/// How long a queue whose fetch answered "claim and start" (paused, or with priority lists
/// or limits) is claimed the two-call way before a fetch is tried again.
const TWO_STEP_MS: i64 = 5_000;

/// The SHA1 of fetch.lua: the one script that touches keys it does not declare (the hashes of
/// the tasks it takes, under its queue's hash tag), which the Cluster key test tells apart.
pub fn fetch_script_hash() -> &'static str {
    let script: &'static redis::Script = &scripts::FETCH;
    script.get_hash()
}

/// A fresh claim token.
pub fn new_claim_token() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The queue is paused; nothing was taken.
    Paused,
    /// A limit of the queue holds every pending task back; nothing was taken. Wait as it
    /// says ([`crate::broker::QueueWaiter::wait_for_release`]), then claim again.
    Held(Hold),
    /// Id suffixes now leased to this worker (empty when the queue was empty).
    Ids(Vec<String>),
}

/// What a fetch ([`Broker::fetch`]) did.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// Took these tasks and started them (empty when the queue was empty).
    Started(Vec<Started>),
    /// Claimed without starting (the queue is paused or has priority lists or limits, or the
    /// call was asked again after a lost reply): start the ids with [`Broker::start`].
    Claimed(Claim),
}

/// Why a claim took nothing from a queue that may have tasks (limits.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The queue's rate limit has no token now; the next one comes after `wait`.
    Rate { wait: Duration },
    /// The queue's concurrency cap is reached: every slot is leased to some worker.
    Concurrency,
}

/// A task leased to this worker, ready to run.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: TaskId,
    pub name: String,
    /// Arguments as JSON text.
    pub args: String,
    pub options: TaskOptions,
    /// Which delivery this is (1 for the first); fences this run's writes.
    pub delivery: u32,
    /// Failed attempts so far that were retried.
    pub retries: u32,
    /// The W3C `traceparent` stored at enqueue (validated again here: a bad one is dropped).
    pub traceparent: Option<TraceParent>,
    /// How long it waited since it could first run (its eta, else its creation).
    pub waited: Option<Duration>,
}

/// The fate of one claimed id at start.
// Nearly every id is a `Run`: boxing it would cost an allocation per task to shrink the rare
// `Skip` (the size grew past clippy's limit with the options' tags).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Started {
    Run(Delivery),
    /// Not run: `gone` (no record or no lease), `revoked`, `expired` (now REVOKED) or
    /// `poison` (undecodable record, now FAILURE in the dead letters); or not now: `parked`
    /// (its key's slots are all in use; it runs when one is freed) or `deferred` (scheduled
    /// for its key's next token).
    Skip {
        id: TaskId,
        reason: String,
    },
}

/// The outcome of one run, to store with [`Broker::finish`].
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: TaskId,
    pub delivery: u32,
    pub verdict: Verdict,
}

/// What [`Broker::finish`] did with one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Stored,
    /// Stored, and the task is a workflow member: its workflow must hear of it
    /// ([`Broker::process_workflow_outbox`]).
    StoredWorkflowMember,
    /// Refused: this run lost its lease and a newer run owns the task.
    Refused,
}

/// How many dead letters a queue keeps, by count and by age.
pub const DEAD_LETTERS_MAX: u64 = 10_000;
pub const DEAD_LETTERS_MAX_AGE_SECS: u64 = 7 * 86_400;

/// The in-flight hash's field that holds no id: a long value that keeps the hash a hash table
/// (claim.lua).
const INFLIGHT_FILLER: &str = "~";

/// How many ids an in-flight hash of `fields` fields (`HLEN`) holds: all but the filler,
/// which every such hash has.
pub(crate) fn held_count(fields: u64) -> u64 {
    fields.saturating_sub(1)
}

/// The ids an in-flight hash (`key`) holds: its fields but the filler.
pub(crate) async fn held_ids(conn: &mut super::RedisConnection, key: &str) -> Result<Vec<String>, BrokerError> {
    use redis::AsyncCommands;
    let mut ids: Vec<String> = conn.hkeys(key).await?;
    ids.retain(|id| id != INFLIGHT_FILLER);
    Ok(ids)
}

fn id_on(queue: &QueueName, suffix: &str) -> Result<TaskId, BrokerError> {
    TaskId::on(queue, suffix).ok_or_else(|| BrokerError::Protocol(format!("bad id suffix {suffix:?}")))
}

/// start_tasks.lua's answer for `ids`: two values a task, '<delivery>[ <retries> <eta>]' and
/// the spec, or 'skip' and the reason. `now`: the start's time, for the wait-time metric.
fn parse_started(ids: Vec<TaskId>, flat: &[String], now: i64) -> Result<Vec<Started>, BrokerError> {
    const STRIDE: usize = 2;
    if flat.len() != ids.len() * STRIDE {
        return Err(BrokerError::Protocol(format!(
            "start returned {} values for {} ids",
            flat.len(),
            ids.len()
        )));
    }
    ids.into_iter()
        .zip(flat.chunks_exact(STRIDE))
        .map(|(id, f)| {
            if f[0] == "skip" {
                return Ok(Started::Skip { id, reason: f[1].clone() });
            }
            let mut run = f[0].split(' ');
            let mut number = || run.next().and_then(|n| n.parse::<i64>().ok());
            let (delivery, retries, eta) = (number(), number(), number());
            let spec = StoredSpec::parse(&f[1]);
            let options = if spec.options.is_empty() {
                TaskOptions::default()
            } else {
                serde_json::from_str(spec.options).unwrap_or_default()
            };
            let queued_since = eta.or_else(|| spec.created_ms_of(id.suffix()));
            let waited = queued_since.map(|since| Duration::from_millis(now.saturating_sub(since).max(0) as u64));
            Ok(Started::Run(Delivery {
                id,
                name: spec.name.to_owned(),
                args: crate::payload::unpack(spec.args).into_owned(),
                options,
                delivery: delivery.unwrap_or(0) as u32,
                retries: retries.unwrap_or(0) as u32,
                traceparent: TraceParent::parse(spec.traceparent),
                waited,
            }))
        })
        .collect()
}

impl Broker {
    /// Leases up to `max` pending tasks of `queue` to `worker`, renewing its lease on the
    /// queue for `lease`. `token` identifies this claim: after an error, ask again with the
    /// same token to get the ids the lost reply carried (use [`new_claim_token`] otherwise).
    pub async fn claim(&self, queue: &QueueName, worker: &str, max: usize, lease: Duration, token: &str) -> Result<Claim, BrokerError> {
        let with_levels = self.knows_priorities(queue);
        match self.claim_once(queue, worker, max, lease, token, with_levels).await? {
            // The queue has priority lists this process did not know of: take them from now on.
            None => {
                self.learn_priorities(queue);
                let claim = self.claim_once(queue, worker, max, lease, token, true).await?;
                claim.ok_or_else(|| BrokerError::Protocol("claim asked for priority lists it was given".into()))
            }
            Some(claim) => Ok(claim),
        }
    }

    /// One call of claim.lua; `None` when it asks for the queue's priority lists.
    async fn claim_once(
        &self,
        queue: &QueueName,
        worker: &str,
        max: usize,
        lease: Duration,
        token: &str,
        with_levels: bool,
    ) -> Result<Option<Claim>, BrokerError> {
        let mut call = scripts::BatchCall::new(&scripts::CLAIM, if with_levels { 16 } else { 7 });
        call.key(self.keys.pending(queue))
            .key(self.keys.inflight(queue, worker))
            .key(self.keys.paused(queue))
            .key(self.keys.leases(queue))
            .key(self.keys.last_claim(queue, worker))
            .key(self.keys.priority_bell(queue))
            .key(self.keys.limits(queue));
        if with_levels {
            for level in self.keys.pending_levels(queue) {
                call.key(level);
            }
        }
        let now = self.clock.now_ms();
        call.arg(max.max(1))
            .arg(worker)
            .arg(now + lease.as_millis() as i64)
            .arg(token)
            .arg(now);
        let reply: Value = call.invoke(&mut self.conn.clone()).await?;
        match reply {
            Value::Int(-1) => Ok(Some(Claim::Paused)),
            Value::Int(-2) => Ok(None),
            Value::Array(held) => {
                let held: Vec<String> = redis::from_redis_value(Value::Array(held)).map_err(|e| BrokerError::Protocol(e.to_string()))?;
                match held.as_slice() {
                    [kind] if kind == "concurrency" => Ok(Some(Claim::Held(Hold::Concurrency))),
                    [kind, ms] if kind == "rate" => {
                        let wait = Duration::from_millis(ms.parse().unwrap_or(1));
                        Ok(Some(Claim::Held(Hold::Rate { wait })))
                    }
                    other => Err(BrokerError::Protocol(format!("claim answered {other:?}"))),
                }
            }
            other => {
                let taken: String = redis::from_redis_value(other).map_err(|e| BrokerError::Protocol(e.to_string()))?;
                Ok(Some(Claim::Ids(taken.split_ascii_whitespace().map(str::to_owned).collect())))
            }
        }
    }

    /// Takes up to `max` pending tasks of `queue` and starts them for `worker`, in one call
    /// (fetch.lua), renewing its lease on the queue for `lease`: what [`Broker::claim`] then
    /// [`Broker::start`] do, for the common queue. A queue that is paused or has priority
    /// lists or limits is claimed the two-call way ([`Fetched::Claimed`]), as is a call asked
    /// again with the same `token` after an error (its ids, to start).
    pub async fn fetch(&self, queue: &QueueName, worker: &str, max: usize, lease: Duration, token: &str) -> Result<Fetched, BrokerError> {
        let now = self.clock.now_ms();
        if self.knows_priorities(queue) || self.two_step_until(queue) > now {
            return Ok(Fetched::Claimed(self.claim(queue, worker, max, lease, token).await?));
        }
        let streams = self.ending_streams(queue);
        let mut call = scripts::BatchCall::new(&scripts::FETCH, 15 + streams.len());
        self.start_keys(&mut call, queue, worker);
        call.key(self.keys.pending(queue))
            .key(self.keys.paused(queue))
            .key(self.keys.leases(queue))
            .key(self.keys.last_claim(queue, worker))
            .key(self.keys.priority_bell(queue));
        for stream in &streams {
            call.key(stream);
        }
        self.start_args(&mut call, queue, worker, now);
        call.arg(max.max(1))
            .arg(now + lease.as_millis() as i64)
            .arg(token)
            .arg(self.keys.task_prefix(queue));
        match call.invoke(&mut self.conn.clone()).await? {
            Value::Int(-3) => {
                // A pause or a limit seldom lasts less: claim the two-call way for a while,
                // without a fetch's refusal in front of each claim.
                (self.two_step.lock().expect("two-step lock")).insert(queue.clone(), now + TWO_STEP_MS);
                Ok(Fetched::Claimed(self.claim(queue, worker, max, lease, token).await?))
            }
            Value::Array(values) => {
                let mut flat: Vec<String> =
                    redis::from_redis_value(Value::Array(values)).map_err(|e| BrokerError::Protocol(e.to_string()))?;
                let taken = flat.pop().unwrap_or_default();
                let ids = taken
                    .split_ascii_whitespace()
                    .map(|s| id_on(queue, s))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Fetched::Started(parse_started(ids, &flat, now)?))
            }
            // Nothing pending ('': never remembered, so never the answer to a repeat), or the
            // ids of a lost reply, asked again.
            other => {
                let taken: String = redis::from_redis_value(other).map_err(|e| BrokerError::Protocol(e.to_string()))?;
                if taken.is_empty() {
                    return Ok(Fetched::Started(Vec::new()));
                }
                Ok(Fetched::Claimed(Claim::Ids(
                    taken.split_ascii_whitespace().map(str::to_owned).collect(),
                )))
            }
        }
    }

    /// Marks claimed tasks STARTED (a new delivery each) or settles those that must not run.
    pub async fn start(&self, queue: &QueueName, worker: &str, suffixes: &[String]) -> Result<Vec<Started>, BrokerError> {
        if suffixes.is_empty() {
            return Ok(Vec::new());
        }
        let ids = suffixes.iter().map(|s| id_on(queue, s)).collect::<Result<Vec<_>, _>>()?;
        let streams = self.ending_streams(queue);
        let mut call = scripts::BatchCall::new(&scripts::START, 10 + ids.len() + streams.len());
        self.start_keys(&mut call, queue, worker);
        for id in &ids {
            call.key(self.keys.task(id));
        }
        for stream in &streams {
            call.key(stream);
        }
        let now = self.clock.now_ms();
        self.start_args(&mut call, queue, worker, now);
        for suffix in suffixes {
            call.arg(suffix);
        }
        let flat: Vec<String> = call.invoke(&mut self.conn.clone()).await?;
        parse_started(ids, &flat, now)
    }

    /// Until when (ms) `queue` is claimed the two-call way without a fetch first (0: not).
    fn two_step_until(&self, queue: &QueueName) -> i64 {
        (self.two_step.lock().expect("two-step lock")).get(queue).copied().unwrap_or(0)
    }

    /// The keys start_tasks.lua reads, first in start.lua's and fetch.lua's `KEYS`.
    fn start_keys(&self, call: &mut scripts::BatchCall, queue: &QueueName, worker: &str) {
        call.key(self.keys.inflight(queue, worker))
            .key(self.keys.dead(queue))
            .key(self.keys.workflow_outbox(queue))
            .key(self.keys.stats(queue))
            .key(self.keys.limits(queue))
            .key(self.keys.slots_freed(queue))
            .key(self.keys.keyed(queue))
            .key(self.keys.key_rates(queue))
            .key(self.keys.parked(queue))
            .key(self.keys.scheduled(queue));
    }

    /// The arguments start_tasks.lua reads, first in start.lua's and fetch.lua's `ARGV`.
    fn start_args(&self, call: &mut scripts::BatchCall, queue: &QueueName, worker: &str, now: i64) {
        call.arg(worker)
            .arg(now)
            .arg(self.result_ttl_secs)
            .arg(self.keys.events_channel())
            .arg(queue.as_str());
    }

    /// Stores outcomes of runs on `queue` by `worker` and ends their leases. Returns, per
    /// outcome, whether it was stored (`false`: the lease was lost and a newer run owns it).
    pub async fn finish(&self, queue: &QueueName, worker: &str, outcomes: &[Outcome]) -> Result<Vec<Ack>, BrokerError> {
        if outcomes.is_empty() {
            return Ok(Vec::new());
        }
        let streams = self.ending_streams(queue);
        let mut call = scripts::BatchCall::new(&scripts::FINISH, 12 + outcomes.len() + streams.len());
        call.key(self.keys.inflight(queue, worker))
            .key(self.keys.stats(queue))
            .key(self.keys.retrying(queue))
            .key(self.keys.dead(queue))
            .key(self.keys.workflow_outbox(queue))
            .key(self.keys.minutes(queue))
            .key(self.keys.revoking(queue))
            .key(self.keys.limits(queue))
            .key(self.keys.slots_freed(queue))
            .key(self.keys.keyed(queue))
            .key(self.keys.parked(queue))
            .key(self.keys.pending(queue));
        for outcome in outcomes {
            call.key(self.keys.task(&outcome.id));
        }
        for stream in &streams {
            call.key(stream);
        }
        call.arg(self.clock.now_ms())
            .arg(self.result_ttl_secs)
            .arg(self.keys.events_channel())
            .arg(queue.as_str())
            .arg(DEAD_LETTERS_MAX)
            .arg(DEAD_LETTERS_MAX_AGE_SECS);
        let error_json = |e: &TaskError| Cow::Owned(serde_json::to_string(e).expect("error serializes"));
        for outcome in outcomes {
            let (state, payload) = match &outcome.verdict {
                Verdict::Success(json) => (Cow::Borrowed("SUCCESS"), self.payload.pack(json)),
                Verdict::Failure(error) => (Cow::Borrowed("FAILURE"), error_json(error)),
                Verdict::Retry { error, due_ms } => (Cow::Owned(format!("RETRY {}", (*due_ms).max(0))), error_json(error)),
            };
            call.arg(outcome.id.suffix())
                .arg(outcome.delivery)
                .arg(state.as_ref())
                .arg(payload.as_ref());
        }
        let stored: String = call.invoke(&mut self.conn.clone()).await?;
        // Under replicated durability, an outcome counts as stored once a replica has it;
        // else the caller stores it again (refused if this master has it, stored if it is a
        // promoted replica that never got it: the fencing token tells).
        self.replicated(|| self.keys.inflight(queue, worker)).await?;
        if stored.len() != outcomes.len() {
            return Err(BrokerError::Protocol(format!(
                "finish answered {stored:?} for {} outcomes",
                outcomes.len()
            )));
        }
        Ok(stored
            .bytes()
            .map(|s| match s {
                b'1' => Ack::Stored,
                b'2' => Ack::StoredWorkflowMember,
                _ => Ack::Refused,
            })
            .collect())
    }

    /// Puts `worker`'s own leased tasks back at the front of their queue (graceful stop).
    /// Returns how many were put back.
    pub async fn requeue_own(&self, queue: &QueueName, worker: &str, suffixes: &[String]) -> Result<usize, BrokerError> {
        let moved = self
            .requeue(&self.keys.inflight(queue, worker), queue, worker, "own".into(), suffixes)
            .await?;
        Ok(moved.max(0) as usize)
    }

    /// Recovers the tasks of `worker` on `queue` if its lease has expired (it crashed): they go
    /// back to the front of the queue. `None` when the lease turned out to be alive.
    /// A worker of an earlier build kept its leased ids in a set of another name: those come
    /// back too.
    pub async fn recover_expired(&self, queue: &QueueName, worker: &str) -> Result<Option<usize>, BrokerError> {
        self.recover_leased(queue, worker, self.clock.now_ms()).await
    }

    /// Recovers the tasks of `worker` on `queue` whatever its lease says, for a worker known
    /// to be dead (its process is gone: the worker's `liveness.rs`). Fenced as the reaper's
    /// recovery: each id leaves the dead worker's in-flight hash in the same script that
    /// requeues it, so it is requeued once however many workers recover it, and a late write
    /// of the dead run would be refused.
    pub async fn recover_dead(&self, queue: &QueueName, worker: &str) -> Result<usize, BrokerError> {
        Ok(self.recover_leased(queue, worker, i64::MAX).await?.unwrap_or(0))
    }

    /// Requeues `worker`'s leased tasks on `queue` unless its lease runs past `guard_ms`.
    async fn recover_leased(&self, queue: &QueueName, worker: &str, guard_ms: i64) -> Result<Option<usize>, BrokerError> {
        use redis::AsyncCommands;
        let guard = guard_ms.to_string();
        let leased = self.leased(queue, worker).await?;
        let held = self.keys.inflight(queue, worker);
        let mut moved = self.requeue(&held, queue, worker, guard.clone(), &leased).await?;
        let legacy = self.keys.legacy_inflight(queue, worker);
        let legacy_leased: Vec<String> = self.conn.clone().smembers(&legacy).await?;
        if moved >= 0 && !legacy_leased.is_empty() {
            moved += self.requeue(&legacy, queue, worker, guard, &legacy_leased).await?.max(0);
        }
        Ok((moved >= 0).then_some(moved as usize))
    }

    async fn requeue(&self, held: &str, queue: &QueueName, worker: &str, guard: String, suffixes: &[String]) -> Result<i64, BrokerError> {
        let mut call = scripts::REQUEUE.prepare_invoke();
        call.key(held)
            .key(self.keys.pending(queue))
            .key(self.keys.leases(queue))
            .key(self.keys.workflow_outbox(queue))
            .key(self.keys.stats(queue))
            .key(self.keys.revoking(queue))
            .key(self.keys.limits(queue))
            .key(self.keys.slots_freed(queue))
            .key(self.keys.keyed(queue))
            .key(self.keys.parked(queue));
        call.arg(self.keys.events_channel())
            .arg(queue.as_str())
            .arg(worker)
            .arg(guard)
            .arg(self.clock.now_ms())
            .arg(self.result_ttl_secs);
        for suffix in suffixes {
            let id = id_on(queue, suffix)?;
            call.key(self.keys.task(&id)).arg(suffix);
        }
        self.priority_keys(queue, &mut call).await?;
        for stream in self.ending_streams(queue) {
            call.key(stream);
        }
        Ok(call.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Workers whose lease on `queue` ran out before now.
    pub async fn expired_leases(&self, queue: &QueueName) -> Result<Vec<String>, BrokerError> {
        use redis::AsyncCommands;
        Ok(self
            .conn
            .clone()
            .zrangebyscore(self.keys.leases(queue), "-inf", self.clock.now_ms() - 1)
            .await?)
    }

    /// Every worker holding a lease on `queue`, expired or not.
    pub async fn lease_holders(&self, queue: &QueueName) -> Result<Vec<String>, BrokerError> {
        use redis::AsyncCommands;
        Ok(self.conn.clone().zrange(self.keys.leases(queue), 0, -1).await?)
    }

    /// Extends `worker`'s lease on each of `queues` (heartbeat).
    pub async fn renew_leases(&self, queues: &[QueueName], worker: &str, lease: Duration) -> Result<(), BrokerError> {
        let expiry = self.clock.now_ms() + lease.as_millis() as i64;
        let mut pipe = redis::pipe();
        for queue in queues {
            pipe.zadd(self.keys.leases(queue), worker, expiry).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Moves waiting tasks of `queue` that are due (countdown, eta, retry backoff) to its
    /// pending list, up to `max` from each waiting set per call; returns how many moved.
    pub async fn promote_due(&self, queue: &QueueName, max: usize) -> Result<usize, BrokerError> {
        let mut moved = 0;
        for waiting in [self.keys.scheduled(queue), self.keys.retrying(queue)] {
            moved += self.promote_from(queue, &waiting, max).await?;
        }
        Ok(moved)
    }

    async fn promote_from(&self, queue: &QueueName, waiting: &str, max: usize) -> Result<usize, BrokerError> {
        use redis::AsyncCommands;
        let now = self.clock.now_ms();
        let due: Vec<String> = self.conn.clone().zrangebyscore_limit(waiting, "-inf", now, 0, max as isize).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut call = scripts::PROMOTE.prepare_invoke();
        call.key(waiting)
            .key(self.keys.pending(queue))
            .key(self.keys.workflow_outbox(queue))
            .key(self.keys.stats(queue));
        call.arg(now)
            .arg(self.result_ttl_secs)
            .arg(self.keys.events_channel())
            .arg(queue.as_str());
        for suffix in &due {
            let id = id_on(queue, suffix)?;
            call.key(self.keys.task(&id)).arg(suffix);
        }
        self.priority_keys(queue, &mut call).await?;
        for stream in self.ending_streams(queue) {
            call.key(stream);
        }
        Ok(call.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Ids leased to `worker` on `queue`.
    pub async fn leased(&self, queue: &QueueName, worker: &str) -> Result<Vec<String>, BrokerError> {
        held_ids(&mut self.conn.clone(), &self.keys.inflight(queue, worker)).await
    }

    /// Records progress of a running task; `false` when this run no longer holds the lease.
    pub async fn report_progress(&self, id: &TaskId, worker: &str, delivery: u32, progress: &Progress) -> Result<bool, BrokerError> {
        let stored: i64 = scripts::PROGRESS
            .key(self.keys.inflight(id.queue(), worker))
            .key(self.keys.task(id))
            .arg(id.suffix())
            .arg(delivery)
            .arg(serde_json::to_string(progress).expect("progress serializes"))
            .arg(self.keys.events_channel())
            .arg(id.to_string())
            .arg(self.clock.now_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(stored == 1)
    }
}
