//! Invariant 9 (Cluster-ready), proven against a real redis-server: every transition runs
//! while `MONITOR` records what Redis executes, including the commands inside scripts. For
//! every script call, each key a command inside it touches must be one of the script's KEYS,
//! and all its KEYS must share one hash tag (one Redis Cluster slot); the one exception is
//! fetch.lua, which may also touch the hashes of the tasks it takes, under that same tag
//! (design.md, invariant 9). Under `CELERIAC_TEST_REDIS=cluster` it runs on a real Cluster,
//! watching every node.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use celeriac::broker::{Claim, Fetched, NewTask, Outcome, Started, UniqueLock, Verdict, fetch_script_hash, new_claim_token};
use celeriac::schedule::ScheduleDef;
use celeriac::workflow::{Plan, Step};
use celeriac::{Broker, Progress, QueueName, TaskError};
use celeriac_testkit::{RedisServer, eventually, unique_namespace};
use redis::AsyncCommands;
use serde_json::json;

/// Starts MONITOR on its own connection to one node and returns once the node has said it
/// monitors (every command after that is seen); the lines it prints are collected until the
/// test reads them.
fn monitor(port: u16) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"MONITOR\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut ok = String::new();
    reader.read_line(&mut ok).unwrap();
    assert_eq!(ok.trim_end(), "+OK", "MONITOR started");
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// The quoted arguments of a MONITOR line, unescaped.
fn args_of(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().skip_while(|c| *c != '"');
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => arg.push(chars.next().unwrap_or('\\')),
                '"' => break,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    args
}

fn tag(key: &str) -> &str {
    let open = key.find('{').expect("every key has a hash tag");
    let close = open + key[open..].find('}').expect("tag closes");
    &key[open + 1..close]
}

async fn run_every_transition(broker: &Broker) {
    let q = QueueName::parse("default").unwrap();
    let lease = Duration::from_secs(30);
    let mut tasks: Vec<NewTask> = (0..6).map(|i| NewTask::new(&q, "echo", &json!(i))).collect();
    tasks[5].due_ms = Some(broker.clock().now_ms() + 60_000);
    broker.enqueue(&q, &tasks, 0, None).await.unwrap();
    let idem = celeriac::broker::Idempotency {
        key: "k".into(),
        fingerprint: "f".into(),
        ttl_secs: 60,
    };
    broker
        .enqueue(&q, &[NewTask::new(&q, "echo", &json!("idem"))], 0, Some(&idem))
        .await
        .unwrap();
    let Claim::Ids(ids) = broker.claim(&q, "w1", 3, lease, &new_claim_token()).await.unwrap() else {
        panic!("paused")
    };
    let runs: Vec<_> = broker
        .start(&q, "w1", &ids)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| if let Started::Run(d) = s { Some(d) } else { None })
        .collect();
    // A fetch: claim and start in one call, on a queue with no pause, priorities or limits.
    let Fetched::Started(fetched) = broker.fetch(&q, "w6", 2, lease, &new_claim_token()).await.unwrap() else {
        panic!("a fetch that starts")
    };
    assert_eq!(fetched.len(), 2, "the fetch took tasks: {fetched:?}");
    broker
        .report_progress(
            &runs[0].id,
            "w1",
            runs[0].delivery,
            &Progress {
                current: 1,
                total: 2,
                message: None,
            },
        )
        .await
        .unwrap();
    let verdicts = [
        Verdict::Success("1".into()),
        Verdict::Failure(TaskError::permanent("no")),
        Verdict::Retry {
            error: TaskError::retryable("again"),
            due_ms: 0,
        },
    ];
    let outcomes: Vec<Outcome> = runs
        .iter()
        .zip(verdicts)
        .map(|(d, verdict)| Outcome {
            id: d.id.clone(),
            delivery: d.delivery,
            verdict,
        })
        .collect();
    broker.finish(&q, "w1", &outcomes).await.unwrap();
    broker.promote_due(&q, 10).await.unwrap();
    broker.retry(&runs[1].id).await.unwrap();
    broker.revoke(&tasks[5].id, false, "test").await.unwrap();
    let Claim::Ids(more) = broker.claim(&q, "w2", 2, lease, &new_claim_token()).await.unwrap() else {
        panic!("paused")
    };
    broker.start(&q, "w2", &more).await.unwrap();
    broker.requeue_own(&q, "w2", &more[..1]).await.unwrap();
    broker.recover_expired(&q, "w2").await.unwrap();
    broker.purge(&q).await.unwrap();
    // Priorities: an enqueue into a level, a delayed one promoted, claims over the levels, a
    // crashed worker's prioritized task back to its level.
    let mut urgent: Vec<NewTask> = (0..3).map(|i| NewTask::new(&q, "echo", &json!(i))).collect();
    for (i, t) in urgent.iter_mut().enumerate() {
        t.options.priority = Some(3 + i as u8);
    }
    urgent[2].due_ms = Some(broker.clock().now_ms());
    broker.enqueue(&q, &urgent, 0, None).await.unwrap();
    broker.promote_due(&q, 10).await.unwrap();
    broker.claim(&q, "w4", 1, lease, &new_claim_token()).await.unwrap();
    broker
        .connection()
        .zadd::<_, _, _, ()>(broker.keys().leases(&q), "w4", 0)
        .await
        .unwrap();
    broker.recover_expired(&q, "w4").await.unwrap();
    broker.claim(&q, "w4", 10, lease, &new_claim_token()).await.unwrap();
    // A unique task's lock: taken at enqueue, released by its task.
    let mut once = NewTask::new(&q, "echo", &json!("once"));
    once.options.unique_for = Some(60.0);
    broker.enqueue(&q, std::slice::from_ref(&once), 0, None).await.unwrap();
    let lock = UniqueLock::of("echo", "\"once\"", &once.options).expect("a unique task");
    broker.release_unique(&once.id, &lock).await.unwrap();
    // A debounced burst: the first call stores its task, the second merges into it.
    for n in 0..2 {
        let mut burst = NewTask::new(&q, "echo", &json!(n));
        burst.options.debounce = Some(60.0);
        broker.enqueue(&q, std::slice::from_ref(&burst), 0, None).await.unwrap();
    }
    // Limits: set (counting a worker's leases), claims under a rate and a cap, tasks of one
    // key parked for its slot and deferred to its next token, slots given back by a finish
    // (which unparks one) and a requeue, cleared.
    let limits = celeriac::broker::QueueLimits {
        rate: Some("1000/s".into()),
        burst: Some(10),
        concurrency: Some(3),
        key_rate: Some("1/s".into()),
        key_burst: None,
        key_concurrency: Some(1),
    };
    let keyed: Vec<NewTask> = (0..3)
        .map(|i| {
            let mut t = NewTask::new(&q, "echo", &json!(["limited", i]));
            t.options.limit_key = Some("customer-1".into());
            t
        })
        .collect();
    broker.enqueue(&q, &keyed, 0, None).await.unwrap();
    broker.set_limits(&q, &limits, celeriac::broker::LimitsSource::Api).await.unwrap();
    if let Claim::Ids(limited) = broker.claim(&q, "w5", 5, lease, &new_claim_token()).await.unwrap() {
        let runs = broker.start(&q, "w5", &limited).await.unwrap();
        let outcomes: Vec<Outcome> = runs
            .into_iter()
            .filter_map(|s| match s {
                Started::Run(d) => Some(Outcome {
                    id: d.id,
                    delivery: d.delivery,
                    verdict: Verdict::Success("1".into()),
                }),
                _ => None,
            })
            .collect();
        broker.finish(&q, "w5", &outcomes).await.unwrap();
    }
    if let Claim::Ids(unparked) = broker.claim(&q, "w5", 5, lease, &new_claim_token()).await.unwrap() {
        broker.start(&q, "w5", &unparked).await.unwrap();
        broker.requeue_own(&q, "w5", &unparked).await.unwrap();
    }
    broker.clear_limits(&q).await.unwrap();
    let plan = Plan::compile(&Step::chain(vec![Step::task("add", json!([1, 1])), Step::task("add", json!([2]))])).unwrap();
    let workflow = broker.start_workflow(&plan).await.unwrap();
    let Claim::Ids(member) = broker.claim(&q, "w3", 1, lease, &new_claim_token()).await.unwrap() else {
        panic!("paused")
    };
    if let Some(Started::Run(d)) = broker.start(&q, "w3", &member).await.unwrap().pop() {
        broker
            .finish(
                &q,
                "w3",
                &[Outcome {
                    id: d.id,
                    delivery: d.delivery,
                    verdict: Verdict::Success("2".into()),
                }],
            )
            .await
            .unwrap();
    }
    broker.process_workflow_outbox(&q).await.unwrap();
    broker.revoke_workflow(&workflow.workflow_id).await.unwrap();
    let schedule: ScheduleDef =
        serde_json::from_value(json!({"name": "tick", "task": "noop", "every": "30s", "queue": "default"})).unwrap();
    broker.put_schedule(&schedule, celeriac::broker::ScheduleSource::Api).await.unwrap();
    broker.set_schedule_paused("tick", true).await.unwrap();
    broker.record_schedule("tick", Some(broker.clock().now_ms()), None).await.unwrap();
    broker.delete_schedule("tick", celeriac::broker::ScheduleSource::Api).await.unwrap();
}

#[tokio::test]
async fn every_script_touches_only_its_keys_and_they_share_one_hash_tag() {
    let redis = RedisServer::start();
    let ns = unique_namespace();
    // With the archive on: the scripts that end tasks also write the queue's archive stream.
    let broker = Broker::connect(&redis.url(), &ns, Duration::from_secs(60))
        .unwrap()
        .with_archive(true);
    let monitors: Vec<_> = redis.ports().into_iter().map(monitor).collect();
    run_every_transition(&broker).await;
    // MONITOR prints commands in the order a node runs them: once a marker sent to every node
    // after the workload is printed there, so is every command of the workload on that node.
    let marker = format!("{ns}:end-of-workload");
    for port in redis.ports() {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut node = client.get_multiplexed_async_connection().await.unwrap();
        let _: String = redis::cmd("ECHO").arg(&marker).query_async(&mut node).await.unwrap();
    }
    for lines in &monitors {
        eventually(Duration::from_secs(10), "MONITOR prints the marker", || async {
            lines.lock().unwrap().iter().any(|line| line.contains(&marker)).then_some(())
        })
        .await;
    }

    let (mut scripts, mut inner, mut fetched_tasks) = (0, 0, 0);
    let fetch: String = fetch_script_hash().chars().take(8).collect();
    // A task hash under the tag of a declared key: `<ns>:{<tag>}:t:<suffix>`.
    let task_prefix_of = |key: &str| format!("{ns}:{{{}}}:t:", tag(key));
    // Each node's lines on their own: a script's inner commands follow it on its node.
    for lines in &monitors {
        let lines = lines.lock().unwrap().clone();
        let mut keys: HashSet<String> = HashSet::new();
        let mut script_name = String::new();
        for line in &lines {
            let args = args_of(line);
            let Some(command) = args.first().map(|c| c.to_ascii_lowercase()) else {
                continue;
            };
            if !line.contains(" lua]") && (command == "evalsha" || command == "eval") {
                let n: usize = args[2].parse().unwrap();
                keys = args[3..3 + n].iter().cloned().collect();
                script_name = args[1].chars().take(8).collect();
                let tags: HashSet<&str> = keys.iter().map(|k| tag(k)).collect();
                assert!(tags.len() <= 1, "script {script_name} spans hash tags {tags:?}");
                scripts += 1;
            } else if line.contains(" lua]") && command != "publish" {
                for arg in args.iter().skip(1).filter(|a| a.starts_with(&format!("{ns}:"))) {
                    let own_task = script_name == fetch && keys.iter().any(|k| arg.starts_with(&task_prefix_of(k)));
                    assert!(
                        keys.contains(arg) || own_task,
                        "script {script_name}: {command} touches {arg}, which is not in its KEYS {keys:?}"
                    );
                    inner += 1;
                    fetched_tasks += usize::from(own_task);
                }
            }
        }
    }
    assert!(
        scripts >= 20 && inner >= 50,
        "the workload ran the scripts: {scripts} calls, {inner} key uses"
    );
    assert!(
        fetched_tasks >= 2,
        "the fetch read and started its tasks' hashes: {fetched_tasks} uses"
    );
}
