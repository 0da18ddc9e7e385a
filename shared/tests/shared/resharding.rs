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

/// Moves `slot` from its master to another one, `batch` keys at a time, pausing between
/// batches so the workload runs while the slot is split. Returns the new master's port and
/// how many keys moved.
fn migrate_slot(seed_port: u16, slot: u16, batch: usize) -> (u16, usize) {
    let mut seed = conn_to(seed_port);
    let all = nodes(&mut seed);
    let masters: Vec<_> = all.iter().filter(|n| n.2).collect();
    let from = masters.iter().find(|n| n.3.iter().any(|(a, b)| (*a..=*b).contains(&slot))).unwrap();
    let to = masters.iter().find(|n| n.0 != from.0).unwrap();
    let (mut src, mut dst) = (conn_to(from.1), conn_to(to.1));
    let setslot = |conn: &mut redis::Connection, how: &str, id: &str| {
        let () = redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(how).arg(id).query(conn).unwrap();
    };
    setslot(&mut dst, "IMPORTING", &from.0);
    setslot(&mut src, "MIGRATING", &to.0);
    let mut moved = 0;
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(batch)
            .query(&mut src)
            .unwrap();
        if keys.is_empty() {
            break;
        }
        let () = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(to.1)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("REPLACE")
            .arg("KEYS")
            .arg(&keys)
            .query(&mut src)
            .unwrap();
        moved += keys.len();
        std::thread::sleep(Duration::from_millis(100));
    }
    for master in &masters {
        setslot(&mut conn_to(master.1), "NODE", &to.0);
    }
    (to.1, moved)
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
            let outcomes: Vec<Outcome> = started
                .into_iter()
                .map(|s| match s {
                    Started::Run(d) => Outcome {
                        id: d.id,
                        delivery: d.delivery,
                        verdict: Verdict::Success("null".into()),
                    },
                    Started::Skip { id, reason } => panic!("{id} skipped: {reason}"),
                })
                .collect();
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
