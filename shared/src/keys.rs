//! Every Redis key name Celeriac uses, in one place. Nothing else formats key strings.
//!
//! Per-queue keys share the hash tag `{queue}`, so one script touching a queue's list, sets and
//! task hashes runs on one Redis Cluster node. Keys that span queues (the worker registry, the
//! queue set) are only ever touched by single commands, never inside a multi-key script.

use crate::id::{QueueName, TaskId};

/// Key names for one namespace (a deployment, or one test).
#[derive(Debug, Clone)]
pub struct Keys {
    ns: String,
}

impl Keys {
    pub fn new(namespace: &str) -> Self {
        Self { ns: namespace.to_owned() }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    fn queue_key(&self, queue: &QueueName, what: &str) -> String {
        self.queue_key_of(queue, &[what])
    }

    /// `<ns>:{<queue>}:<parts...>`, built without the formatting machinery: task keys are
    /// built for every task at every step.
    fn queue_key_of(&self, queue: &QueueName, parts: &[&str]) -> String {
        let queue = queue.as_str();
        let len = self.ns.len() + queue.len() + 4 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        for part in [self.ns.as_str(), ":{", queue, "}:"].iter().chain(parts) {
            key.push_str(part);
        }
        key
    }

    /// The SCAN pattern matching every per-queue key of the namespace (`<ns>:{*}:*`).
    pub fn queue_keys_pattern(&self) -> String {
        format!("{}:{{*}}:*", self.ns)
    }

    /// Reads a per-queue key of this namespace back: its queue's hash tag and which of the
    /// queue's keys it is. `None` for a key of another namespace or shape.
    pub fn parse_queue_key<'a>(&self, key: &'a str) -> Option<(&'a str, QueueKey<'a>)> {
        let rest = key.strip_prefix(self.ns.as_str())?.strip_prefix(":{")?;
        let (tag, kind) = rest.split_once("}:")?;
        let parsed = match kind {
            "pending" => QueueKey::Pending,
            "scheduled" => QueueKey::Scheduled,
            "retry" => QueueKey::Retrying,
            "purging" => QueueKey::Purging,
            "parked" => QueueKey::Parked,
            _ => match kind.split_once(':') {
                Some(("pending", _level)) => QueueKey::Pending,
                Some(("held", worker)) => QueueKey::Inflight(worker),
                Some(("inflight", worker)) => QueueKey::LegacyInflight(worker),
                Some(("t", suffix)) => QueueKey::Task(suffix),
                _ => QueueKey::Other(kind),
            },
        };
        Some((tag, parsed))
    }

    /// List of ids waiting to run; producers push left, workers take from the right.
    pub fn pending(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "pending")
    }

    /// List of ids of priority `level` (1 to 9) waiting to run, like [`Keys::pending`] (which
    /// holds level 0, the default): only a queue given priorities has these (flow.md,
    /// docs/design.md "Priorities").
    pub fn pending_level(&self, queue: &QueueName, level: u8) -> String {
        debug_assert!((1..=crate::task::MAX_PRIORITY).contains(&level));
        self.queue_key_of(queue, &["pending:", LEVEL_DIGITS[level as usize]])
    }

    /// The pending lists of priority 9 down to 1, highest first: the order claims take them.
    pub fn pending_levels(&self, queue: &QueueName) -> Vec<String> {
        (1..=crate::task::MAX_PRIORITY)
            .rev()
            .map(|l| self.pending_level(queue, l))
            .collect()
    }

    /// Present (for good) once the queue was given a task of priority above 0: its workers
    /// then wait on [`Keys::priority_bell`] too.
    pub fn priority_marker(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "prio")
    }

    /// A one-element list present while some priority list of the queue may hold ids: pushes
    /// into a priority list ring it, a claim that finds them all empty removes it. Workers
    /// block on it beside the pending list, and a claim that sees it takes the priority lists.
    pub fn priority_bell(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "bell")
    }

    /// Hash of the queue's flow limits (limits.rs): the rate as an emission interval in
    /// microseconds (`interval`), its `burst` and `tat` (the GCRA's theoretical arrival time,
    /// µs), the concurrency `cap` and `running` (ids leased to workers, counted while a cap is
    /// set), and what was declared (`rate`, `concurrency`, `source`). Absent: no limit.
    pub fn limits(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "limits")
    }

    /// Hash of the queue's key limits at work (keyed.lua): `r:<key>` the tasks of a key
    /// holding its slots, `s:<suffix>` the key of each such task. Absent while none runs.
    pub fn keyed(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "keyed")
    }

    /// Sorted set of each key's GCRA time (µs) under the queue's key rate; a key whose time
    /// is not in the future is at rest and its entry goes.
    pub fn key_rates(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "keyrates")
    }

    /// Sorted set of the tasks waiting for their key's slot: `<key>\n<suffix>`, all scored 0
    /// (a key's tasks are one lexical range). Their home while they wait (still `PENDING`).
    pub fn parked(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "parked")
    }

    /// List a worker held back by the queue's concurrency cap blocks on: the scripts that end
    /// leases push one element per slot they free (at most the cap's number are kept).
    pub fn slots_freed(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "freed")
    }

    /// Sorted set of ids waiting for a time (countdown, eta, retry backoff), scored by due ms.
    pub fn scheduled(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "scheduled")
    }

    /// Sorted set of ids waiting to be retried after a failed attempt, scored by due ms.
    pub fn retrying(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "retry")
    }

    /// A pending list being purged: `DELETE /queues/{q}/pending` renames the pending list to
    /// this in one step, then settles its tasks in batches.
    pub fn purging(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "purging")
    }

    /// Hash of the ids leased to one worker process on this queue, each to its fencing token:
    /// `""` when claimed, then the delivery it started, `w<delivery>` for a workflow member
    /// (claim.lua, start.lua). finish.lua fences a run with it without reading the task.
    pub fn inflight(&self, queue: &QueueName, worker: &str) -> String {
        self.queue_key(queue, &format!("held:{worker}"))
    }

    /// Set of the ids leased to a worker of an earlier build (no tokens). Only read to give a
    /// crashed one's tasks back after an upgrade, and by the audit.
    pub fn legacy_inflight(&self, queue: &QueueName, worker: &str) -> String {
        self.queue_key(queue, &format!("inflight:{worker}"))
    }

    /// Set of ids revoked while they ran (revoke.lua): finish.lua stores those as REVOKED.
    pub fn revoking(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "revoking")
    }

    /// A worker's last claim on this queue (token and ids), so a claim whose reply was lost
    /// can be asked for again.
    pub fn last_claim(&self, queue: &QueueName, worker: &str) -> String {
        self.queue_key(queue, &format!("claim:{worker}"))
    }

    /// Sorted set of the workers holding leases on this queue, scored by lease expiry (ms).
    pub fn leases(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "leases")
    }

    /// Sorted set of dead-lettered ids, scored by when they died.
    pub fn dead(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "dead")
    }

    /// List of workflow members of this queue that ended and whose workflow has not yet
    /// heard of it (written in the same step as the ending; emptied by workers).
    pub fn workflow_outbox(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "wfdone")
    }

    /// A workflow's plan, counters and member results (its own hash tag).
    pub fn workflow(&self, id: &str) -> String {
        format!("{}:{{{id}}}:wf", self.ns)
    }

    /// Sorted set of workflow ids whose start is under way, scored by when it began (ms): an
    /// id left there (its starter died) is finished by the workers' reapers.
    pub fn workflows_starting(&self) -> String {
        format!("{}:workflows:starting", self.ns)
    }

    /// A workflow `Idempotency-Key`'s claim: `<workflow id> <request fingerprint>`.
    pub fn workflow_idempotency(&self, key: &str) -> String {
        format!("{}:workflows:idem:{key}", self.ns)
    }

    /// Hash of counters for the queue: enqueued (enqueue.lua), succeeded, failed, retried,
    /// revoked (finish.lua).
    pub fn stats(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "stats")
    }

    /// Present while the queue is paused.
    pub fn paused(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "paused")
    }

    /// An idempotency key's claim, holding the first task's id.
    pub fn idempotency(&self, queue: &QueueName, key: &str) -> String {
        self.queue_key(queue, &format!("idem:{key}"))
    }

    /// A unique task's lock (`unique_for`), holding its id: a call with the same key finds it.
    pub fn unique(&self, queue: &QueueName, key: &str) -> String {
        self.queue_key(queue, &format!("uniq:{key}"))
    }

    /// A debounced burst's key (`debounce`), holding the id suffix of the task it last
    /// stored: a call finds the task to merge into while that one still waits.
    pub fn debounce(&self, queue: &QueueName, key: &str) -> String {
        self.queue_key(queue, &format!("debounce:{key}"))
    }

    /// List of the queue's tasks, newest first, one `<created ms>-<suffix>` entry each: the
    /// listing log (listing.rs). Earlier versions kept a sorted set under `index` instead.
    pub fn listing(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "listing")
    }

    /// Stream of the queue's tasks that ended, handed over to the PostgreSQL archive by the
    /// script that recorded each ending (lua/archive.lua): one entry per script call, for each
    /// task it ended the task id (`_i`) and its record's `DUMP` (`_d`); entries of earlier
    /// builds hold one task each (`_id`, with its `DUMP` or its record's fields). Read by the
    /// archivers' consumer group.
    pub fn archive(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "archive")
    }

    /// Stream of the queue's tasks with a `callback_url` that reached a final state, handed
    /// over by the script that recorded each ending (lua/archive.lua): one entry per ending,
    /// the task id (`id`) and its state (`s`). Read by the workers' webhook deliverers
    /// (consumer group `webhooks`); an entry is deleted once delivered or given up.
    pub fn webhooks(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "webhooks")
    }

    /// Hash of finished (`s:<minute>`) and failed (`f:<minute>`) counts of the last hour.
    pub fn minutes(&self, queue: &QueueName) -> String {
        self.queue_key(queue, "minutes")
    }

    /// The task's record (a hash).
    pub fn task(&self, id: &TaskId) -> String {
        self.queue_key_of(id.queue(), &["t:", id.suffix()])
    }

    /// What the hash of every task of `queue` starts with: [`Keys::task`] is this and the
    /// id's suffix (fetch.lua builds the keys of the tasks it takes so).
    pub fn task_prefix(&self, queue: &QueueName) -> String {
        self.queue_key_of(queue, &["t:"])
    }

    /// Set of every queue name that has ever been used in this namespace.
    pub fn queues(&self) -> String {
        format!("{}:queues", self.ns)
    }

    /// Hash of sharded queue -> its number of shards (absent: 1). Only ever raised
    /// (lua/shards_raise.lua), so no shard holding tasks is ever forgotten.
    pub fn shards(&self) -> String {
        format!("{}:shards", self.ns)
    }

    /// Sorted set of live worker ids scored by the time (ms) their lease runs out.
    pub fn workers(&self) -> String {
        format!("{}:workers", self.ns)
    }

    /// Hash describing one worker process (host, pid, queues, concurrency).
    pub fn worker_info(&self, worker: &str) -> String {
        format!("{}:worker:{worker}", self.ns)
    }

    /// One worker's task metrics (JSON), rewritten at each heartbeat; expires on its own.
    pub fn worker_metrics(&self, worker: &str) -> String {
        format!("{}:worker:{worker}:metrics", self.ns)
    }

    /// Hash of task name -> JSON spec, registered by running workers.
    pub fn registry(&self) -> String {
        format!("{}:registry", self.ns)
    }

    /// Hash of remote task type name -> its JSON definition, secret included (`remote.rs`).
    pub fn task_types(&self) -> String {
        format!("{}:task-types", self.ns)
    }

    /// Hash of queue name -> the callback URL its tasks get when they name none (a webhook
    /// subscription made through the admin API; read by every enqueue through the catalogue).
    pub fn webhook_subscriptions(&self) -> String {
        format!("{}:webhook-subscriptions", self.ns)
    }

    /// The HMAC key of run tokens (`run_token.rs`), made by the first process that needs it.
    pub fn run_secret(&self) -> String {
        format!("{}:run-secret", self.ns)
    }

    /// Pub/sub channel of commands to every worker (revoke a running task).
    pub fn control_channel(&self) -> String {
        format!("{}:control", self.ns)
    }

    /// Pub/sub channel on which every change of a task's state or progress announces its id
    /// (a batch of changes: several ids separated by spaces).
    pub fn events_channel(&self) -> String {
        format!("{}:events", self.ns)
    }

    /// Hash of schedule name -> its stored definition (JSON with its source).
    /// Schedule keys share the hash tag `{schedules}`, so one script may touch a definition
    /// and its state on Redis Cluster.
    pub fn schedules(&self) -> String {
        format!("{}:{{schedules}}:defs", self.ns)
    }

    /// Hash of one schedule's state: cursor, paused, last run, last occurrence, last task id.
    pub fn schedule_state(&self, name: &str) -> String {
        format!("{}:{{schedules}}:state:{name}", self.ns)
    }
}

const LEVEL_DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Which of a queue's keys a key name is ([`Keys::parse_queue_key`]): the places a task can be,
/// and its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKey<'a> {
    Pending,
    Scheduled,
    Retrying,
    Purging,
    /// Tasks waiting for their key's slot ([`Keys::parked`]), as `<key>\n<suffix>`.
    Parked,
    /// A worker's in-flight hash ([`Keys::inflight`]), with the worker's id.
    Inflight(&'a str),
    /// An earlier build's in-flight set ([`Keys::legacy_inflight`]).
    LegacyInflight(&'a str),
    /// A task's record, with the id's suffix.
    Task(&'a str),
    /// Any other key of the queue (its stats, listing, dead letters, ...).
    Other(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tasks_keys_share_its_queues_hash_tag() {
        let keys = Keys::new("celeriac");
        let queue = QueueName::parse("emails").unwrap();
        let id = TaskId::generate(&queue);
        let tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_owned();
        let t = tag(&keys.task(&id));
        assert_eq!(t, "{emails}");
        for k in [
            keys.pending(&queue),
            keys.scheduled(&queue),
            keys.inflight(&queue, "w1"),
            keys.legacy_inflight(&queue, "w1"),
            keys.revoking(&queue),
            keys.leases(&queue),
            keys.dead(&queue),
            keys.stats(&queue),
            keys.archive(&queue),
            keys.webhooks(&queue),
        ] {
            assert_eq!(tag(&k), t, "{k}");
        }
        assert_eq!(tag(&keys.schedules()), tag(&keys.schedule_state("nightly")));
    }

    #[test]
    fn key_names_are_the_namespace_the_tag_and_the_kind() {
        let keys = Keys::new("ns");
        let queue = QueueName::parse("emails").unwrap();
        let id = TaskId::parse("emails-0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap();
        assert_eq!(keys.task(&id), "ns:{emails}:t:0193a1b2c3d4e5f60718293a4b5c6d7e");
        assert_eq!(keys.pending(&queue), "ns:{emails}:pending");
        assert_eq!(keys.inflight(&queue, "w1"), "ns:{emails}:held:w1");
    }

    #[test]
    fn a_queue_key_reads_back_as_what_it_is() {
        let keys = Keys::new("ns");
        let queue = QueueName::parse("emails").unwrap();
        let id = TaskId::parse("emails-0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap();
        let cases = [
            (keys.pending(&queue), QueueKey::Pending),
            (keys.scheduled(&queue), QueueKey::Scheduled),
            (keys.retrying(&queue), QueueKey::Retrying),
            (keys.purging(&queue), QueueKey::Purging),
            (keys.inflight(&queue, "w:1"), QueueKey::Inflight("w:1")),
            (keys.legacy_inflight(&queue, "w1"), QueueKey::LegacyInflight("w1")),
            (keys.task(&id), QueueKey::Task(id.suffix())),
            (keys.stats(&queue), QueueKey::Other("stats")),
        ];
        for (key, kind) in cases {
            assert_eq!(keys.parse_queue_key(&key), Some(("emails", kind)), "{key}");
        }
        assert_eq!(keys.parse_queue_key("other:{emails}:pending"), None);
        assert_eq!(keys.parse_queue_key(&keys.queues()), None);
        assert_eq!(keys.queue_keys_pattern(), "ns:{*}:*");
    }
}
