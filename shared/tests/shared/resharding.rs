//! Resharding under load: the slot of one shard of a sharded queue moves to another master
//! (CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE of its keys in small batches, SETSLOT NODE)
//! while tasks are enqueued, fetched (claimed and started in one call, fetch.lua, which touches
//! task hashes it does not declare), claimed, started and finished on every shard. The client follows
//! the `ASK` and `MOVED` redirections; a script that gets `TRYAGAIN` while its keys are split
//! between the nodes fails and is retried by its caller (here a loop, as the worker's own loops
//! and a producer retrying a 503 would): every task ends exactly once, nothing is left pending
//! or leased, and the slot is served by its new master.

use std::collections::HashSet;
use std::time::Duration;

use celeriac::broker::{Claim, Fetched, NewTask, Outcome, Started, Verdict, new_claim_token};
use celeriac::{QueueName, TaskState};
use celeriac_testkit::RedisCluster;
use serde_json::json;

use crate::common::{broker_on, start_and_succeed};

/// One line of `CLUSTER NODES`: id, port, is master, slot ranges.
type Node = (String, u16, bool, Vec<(u16, u16)>);

fn nodes(conn: &mut redis::Connection) -> Vec<Node> {
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(conn).unwrap();
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let port = f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            let ranges = f[8..]
                .iter()
                .filter_map(|r| match r.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => r.parse().ok().map(|s| (s, s)),
                })
                .collect();
            (f[0].to_owned(), port, f[2].contains("master"), ranges)
        })
        .collect()
}

fn conn_to(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// A slot on its way from one master to another.
struct SlotMove {
    slot: u16,
    from: Node,
    to: Node,
    masters: Vec<Node>,
}

impl SlotMove {
    /// Marks `slot` as moving from its master to another one (IMPORTING on the new master,
    /// then MIGRATING on the old): from here until [`SlotMove::end`], the slot is split.
    fn begin(seed_port: u16, slot: u16) -> Self {
        let masters: Vec<Node> = nodes(&mut conn_to(seed_port)).into_iter().filter(|n| n.2).collect();
        let holds = |n: &&Node| n.3.iter().any(|(a, b)| (*a..=*b).contains(&slot));
        let from = masters.iter().find(holds).unwrap().clone();
        let to = masters.iter().find(|n| n.0 != from.0).unwrap().clone();
        let this = Self { slot, from, to, masters };
        this.set_slot(this.to.1, "IMPORTING", &this.from.0);
        this.set_slot(this.from.1, "MIGRATING", &this.to.0);
        this
    }

    fn set_slot(&self, port: u16, how: &str, id: &str) {
        let () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(self.slot)
            .arg(how)
            .arg(id)
            .query(&mut conn_to(port))
            .unwrap();
    }

    /// Moves `keys` from the old master to the new one.
    fn migrate(&self, keys: &[String]) {
        let () = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(self.to.1)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("REPLACE")
            .arg("KEYS")
            .arg(keys)
            .query(&mut conn_to(self.from.1))
            .unwrap();
    }

    /// Moves the keys left in the slot, `batch` at a time, pausing between batches so a
    /// workload runs while the slot is split. Returns how many moved.
    fn migrate_rest(&self, batch: usize) -> usize {
        let mut moved = 0;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(self.slot)
                .arg(batch)
                .query(&mut conn_to(self.from.1))
                .unwrap();
            if keys.is_empty() {
                return moved;
            }
            self.migrate(&keys);
            moved += keys.len();
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Gives the slot to its new master, on every master.
    fn end(&self) {
        for master in &self.masters {
            self.set_slot(master.1, "NODE", &self.to.0);
        }
    }
}

/// Moves `slot` from its master to another one, `batch` keys at a time, pausing between
/// batches so the workload runs while the slot is split. Returns the new master's port and
/// how many keys moved.
fn migrate_slot(seed_port: u16, slot: u16, batch: usize) -> (u16, usize) {
    let slot_move = SlotMove::begin(seed_port, slot);
    let moved = slot_move.migrate_rest(batch);
    slot_move.end();
    (slot_move.to.1, moved)
}

/// The success of each run started, as a worker would store it; panics on a task that may
/// not run.
fn successes(started: Vec<Started>) -> Vec<Outcome> {
    started
        .into_iter()
        .map(|s| match s {
            Started::Run(d) => Outcome {
                id: d.id,
                delivery: d.delivery,
                verdict: Verdict::Success("null".into()),
            },
            Started::Skip { id, reason } => panic!("{id} skipped: {reason}"),
        })
        .collect()
}

/// Runs `call` until it succeeds (a script may `TRYAGAIN` while its keys are split between
/// the two nodes, or meet a redirection the client's own retries did not absorb), counting
/// the failed attempts.
async fn retried<T, F: std::future::Future<Output = Result<T, celeriac::BrokerError>>>(
    errors: &mut usize,
    mut call: impl FnMut() -> F,
) -> T {
    for _ in 0..200 {
        match call().await {
            Ok(value) => return value,
            Err(e) => {
                *errors += 1;
                if *errors < 5 {
                    eprintln!("retrying after: {e}");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    panic!("a call kept failing during the migration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shards_slot_moves_to_another_master_under_load_and_nothing_is_lost_or_stuck() {
    let cluster = RedisCluster::start_with(0);
    let broker = broker_on(&cluster.url()).await;
    let queue = QueueName::parse("q").unwrap();
    broker.raise_shards(&queue, 3).await.unwrap();
    let shards = broker.shards_of(&queue).await.unwrap();
    let moving = queue.shard(1);
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{{{moving}}}"))
        .query(&mut conn_to(cluster.ports()[0]))
        .unwrap();
    // A backlog on the moving shard, so its slot holds many keys when the move starts.
    let mut accepted = Vec::new();
    for i in 0..300 {
        let task = NewTask::new(&moving, "noop", &json!(i));
        broker.enqueue(&moving, std::slice::from_ref(&task), 0, None).await.unwrap();
        accepted.push(task.id);
    }
    let seed = cluster.ports()[0];
    let migration = std::thread::spawn(move || migrate_slot(seed, slot, 5));

    let mut errors = 0;
    let mut ran = Vec::new();
    let (mut round, mut rounds_while_moving, mut moving_fetches_while_moving) = (0, 0, 0);
    while !migration.is_finished() || round < 5 {
        round += 1;
        rounds_while_moving += usize::from(!migration.is_finished());
        // Workers go on through the move, on every shard: a worker's fetch (claim and start in one
        // call) or a claim then a start (as pull workers do), in turns, the moving shard
        // fetched first (in the round that meets its move) and the others claimed first.
        for shard in &shards {
            let token = new_claim_token();
            let lease = Duration::from_secs(60);
            let fetching = (round % 2 == 1) == (*shard == moving);
            let moving_now = *shard == moving && !migration.is_finished();
            let fetched = if fetching {
                retried(&mut errors, || broker.fetch(shard, "w1", 8, lease, &token)).await
            } else {
                Fetched::Claimed(retried(&mut errors, || broker.claim(shard, "w1", 8, lease, &token)).await)
            };
            moving_fetches_while_moving += usize::from(fetching && moving_now);
            let started = match fetched {
                Fetched::Started(started) => started,
                Fetched::Claimed(Claim::Ids(ids)) => retried(&mut errors, || broker.start(shard, "w1", &ids)).await,
                Fetched::Claimed(other) => panic!("took nothing: {other:?}"),
            };
            let outcomes = successes(started);
            retried(&mut errors, || broker.finish(shard, "w1", &outcomes)).await;
            ran.extend(outcomes.into_iter().map(|o| o.id));
        }
        // ... and so do producers.
        for _ in 0..6 {
            let shard = broker.pick_shard(&queue, None).await;
            let task = NewTask::new(&shard, "noop", &json!(round));
            retried(&mut errors, || broker.enqueue(&shard, std::slice::from_ref(&task), 0, None)).await;
            accepted.push(task.id);
        }
        if round > 2000 {
            panic!("the migration did not end");
        }
    }
    let (new_master, keys_moved) = migration.join().unwrap();
    let rounds_during_move = rounds_while_moving;
    // Drain what is left.
    for _ in 0..100 {
        let mut took = 0;
        for shard in &shards {
            let Claim::Ids(ids) = broker
                .claim(shard, "w1", 100, Duration::from_secs(60), &new_claim_token())
                .await
                .unwrap()
            else {
                panic!("paused")
            };
            took += ids.len();
            let outcomes = start_and_succeed(&broker, shard, "w1", &ids, "null").await;
            ran.extend(outcomes.into_iter().map(|o| o.id));
        }
        if took == 0 {
            break;
        }
    }
    eprintln!(
        "resharding: {keys_moved} keys of slot {slot} moved to :{new_master} while {rounds_during_move} rounds of \
         enqueue/claim/start/finish ran ({moving_fetches_while_moving} fetches of the moving shard sent during the move); {} tasks accepted, \
         {} runs, {errors} calls retried",
        accepted.len(),
        ran.len()
    );
    // A script whose keys are split between the two nodes gets TRYAGAIN until the last of
    // them has moved (the client retries, then the caller): the moving shard's work waits for
    // the move, the other shards' goes on. The workload must have been under way meanwhile.
    assert!(keys_moved > 300 && rounds_during_move >= 1, "the workload ran while the slot moved");
    // A fetch touches task hashes it does not declare: it must never run while its slot is
    // split (its declared keys include absent ones, so Redis refuses it with TRYAGAIN and
    // the client asks again), and fetches of the moving shard did meet the move.
    assert!(
        moving_fetches_while_moving >= 1,
        "the moving shard was fetched from during its move"
    );
    let unique: HashSet<_> = ran.iter().collect();
    assert_eq!(unique.len(), ran.len(), "no task ran twice");
    assert_eq!(ran.len(), accepted.len(), "every accepted task ran");
    for id in &accepted {
        let record = broker.get(id).await.unwrap().expect("the record");
        assert_eq!(record.state, TaskState::Success, "{id}");
    }
    let overview = broker.queue_overview(&queue).await.unwrap();
    assert_eq!((overview.pending, overview.active), (0, 0), "nothing pending or leased");
    // The slot is served by its new master.
    let owner = nodes(&mut conn_to(new_master))
        .into_iter()
        .find(|n| n.2 && n.3.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .unwrap();
    assert_eq!(owner.1, new_master);
}

/// The Cluster slot of `queue`'s keys.
fn slot_of(port: u16, queue: &QueueName) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{{{queue}}}"))
        .query(&mut conn_to(port))
        .unwrap()
}

/// `command` on the new master of a moving slot, which serves its keys only after ASKING.
fn asking<T: redis::FromRedisValue>(port: u16, command: &redis::Cmd) -> T {
    let (value,): (T,) = redis::pipe()
        .cmd("ASKING")
        .ignore()
        .add_command(command.clone())
        .query(&mut conn_to(port))
        .unwrap();
    value
}

/// fetch.lua reads and writes the hashes of the tasks it takes without declaring them, so it
/// must never run on a node that holds only part of its slot: it would take a task whose hash
/// has moved for one that is gone. It declares the queue's pause flag, priority bell and limits,
/// which do not exist on a queue it may fetch, so while the slot is split Redis counts them
/// missing on either master and refuses the call (TRYAGAIN) before the script runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_is_refused_while_its_slot_is_split_and_takes_nothing() {
    let cluster = RedisCluster::start_with(0);
    let broker = broker_on(&cluster.url()).await;
    let keys = broker.keys().clone();
    let queue = QueueName::parse("q").unwrap();
    let lease = Duration::from_secs(60);
    // A first fetch and its outcomes, so the worker's own keys (in-flight hash, lease, last
    // claim) exist when the slot splits, as they do for a worker that has been running.
    let earlier: Vec<NewTask> = (0..2).map(|i| NewTask::new(&queue, "noop", &json!(i))).collect();
    broker.enqueue(&queue, &earlier, 0, None).await.unwrap();
    let Fetched::Started(started) = broker.fetch(&queue, "w1", 10, lease, &new_claim_token()).await.unwrap() else {
        panic!("a fetch that starts");
    };
    let outcomes = successes(started);
    assert_eq!(outcomes.len(), 2);
    broker.finish(&queue, "w1", &outcomes).await.unwrap();
    let tasks: Vec<NewTask> = (0..6).map(|i| NewTask::new(&queue, "noop", &json!(i))).collect();
    broker.enqueue(&queue, &tasks, 0, None).await.unwrap();
    let slot_move = SlotMove::begin(cluster.ports()[0], slot_of(cluster.ports()[0], &queue));
    // Half the task hashes move; the pending list, the other half and the rest of the queue stay.
    let moved: Vec<String> = tasks[..3].iter().map(|t| keys.task(&t.id)).collect();
    slot_move.migrate(&moved);

    let refused = broker.fetch(&queue, "w1", 10, lease, &new_claim_token()).await;
    let error = refused.expect_err("a fetch while its slot is split");
    assert!(error.to_string().contains("TryAgain"), "{error}");
    // Nothing was taken: every id still pending on the old master, every task PENDING on the
    // master that holds it, and nothing leased on either.
    let (old, new) = (slot_move.from.1, slot_move.to.1);
    let pending: Vec<String> = redis::cmd("LRANGE")
        .arg(keys.pending(&queue))
        .arg(0)
        .arg(-1)
        .query(&mut conn_to(old))
        .unwrap();
    let mut suffixes: Vec<&str> = tasks.iter().map(|t| t.id.suffix()).collect();
    suffixes.reverse(); // newest first in the list
    assert_eq!(pending, suffixes);
    let state = |t: &NewTask| redis::cmd("HGET").arg(keys.task(&t.id)).arg("s").clone();
    for t in &tasks[..3] {
        assert_eq!(asking::<String>(new, &state(t)), "PENDING", "moved: {}", t.id);
    }
    for t in &tasks[3..] {
        let s: String = state(t).query(&mut conn_to(old)).unwrap();
        assert_eq!(s, "PENDING", "stayed: {}", t.id);
    }
    let leased = redis::cmd("HLEN").arg(keys.inflight(&queue, "w1")).clone();
    assert_eq!(leased.query::<u32>(&mut conn_to(old)).unwrap(), 1, "only the filler field");

    // Once the whole slot has moved, a fetch takes all six, oldest first, each a first run.
    slot_move.migrate_rest(100);
    slot_move.end();
    let Fetched::Started(started) = broker.fetch(&queue, "w1", 10, lease, &new_claim_token()).await.unwrap() else {
        panic!("a fetch that starts");
    };
    let runs: Vec<(String, u32)> = successes(started).into_iter().map(|o| (o.id.to_string(), o.delivery)).collect();
    let expected: Vec<(String, u32)> = tasks.iter().map(|t| (t.id.to_string(), 1)).collect();
    assert_eq!(runs, expected);
}
