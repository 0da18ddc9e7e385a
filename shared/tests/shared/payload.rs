//! Compression of large arguments and results in Redis: every reader sees the JSON it was
//! given (the record, the listing, the worker's start, the archive's stream entry), the
//! memory a realistic 20 KB JSON payload takes with and without it, and oversized arguments
//! refused by the one enqueue path.

use std::collections::HashMap;

use celeriac::broker::{ListFilter, NewTask, Outcome, Started, Verdict};
use celeriac::call::CallOptions;
use celeriac::catalog::{CallError, Catalog};
use celeriac::payload::{MARKER, PayloadLimits};
use celeriac::settings::TaskSettings;
use celeriac::{QueueName, TaskRecord, TaskState};
use redis::AsyncCommands;
use serde_json::{Value, json};

use celeriac_testkit::order_json;

use crate::common::redis_and_broker;

fn queue() -> QueueName {
    QueueName::parse("default").unwrap()
}

#[tokio::test]
async fn compressed_payloads_read_back_identical_through_every_reader() {
    let (_redis, broker) = redis_and_broker();
    let broker = broker.with_archive(true);
    let args = order_json(20_000);
    let task = NewTask::new(&queue(), "echo", &args);
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    let spec: String = broker.connection().hget(broker.keys().task(&task.id), "t").await.unwrap();
    assert!(spec.contains(MARKER), "stored compressed");

    // The worker's start.
    let ids = match broker
        .claim(&queue(), "w1", 1, std::time::Duration::from_secs(30), "tok")
        .await
        .unwrap()
    {
        celeriac::broker::Claim::Ids(ids) => ids,
        other => panic!("{other:?}"),
    };
    let Some(Started::Run(delivery)) = broker.start(&queue(), "w1", &ids).await.unwrap().pop() else {
        panic!("not started")
    };
    assert_eq!(serde_json::from_str::<Value>(&delivery.args).unwrap(), args);

    let result = serde_json::to_string(&args).unwrap();
    let outcome = Outcome {
        id: task.id.clone(),
        delivery: delivery.delivery,
        verdict: Verdict::Success(result),
    };
    broker.finish(&queue(), "w1", &[outcome]).await.unwrap();
    let stored: String = broker.connection().hget(broker.keys().task(&task.id), "r").await.unwrap();
    assert!(stored.starts_with(MARKER), "result stored compressed");

    // The record, as GET /tasks/{id} and the event stream read it.
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!(
        (record.state, &record.args, record.result.as_ref()),
        (TaskState::Success, &args, Some(&args))
    );
    // The listing.
    let page = broker.list_tasks(&ListFilter::default(), 10, 1000, None).await.unwrap();
    assert_eq!(page.tasks[0].result.as_ref(), Some(&args));
    assert_eq!(page.tasks[0].args, args);
    // The archive's stream entry: the record's DUMP, restored by Redis (celeriac-archiver
    // decodes it itself; its tests compare the two).
    let mut conn = broker.connection();
    let entries: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(broker.keys().archive(&queue()))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (_, entry) = entries.last().expect("an archive entry");
    assert_eq!(entry["_i"], task.id.to_string().into_bytes());
    let restored = format!("{}:restored", broker.keys().archive(&queue()));
    let _: () = redis::cmd("RESTORE")
        .arg(&restored)
        .arg(0)
        .arg(&entry["_d"])
        .query_async(&mut conn)
        .await
        .unwrap();
    let fields: HashMap<String, String> = redis::cmd("HGETALL").arg(&restored).query_async(&mut conn).await.unwrap();
    let archived = TaskRecord::from_hash(task.id.clone(), fields).unwrap();
    assert_eq!((archived.args, archived.result), (args.clone(), Some(args)));
}

#[tokio::test]
async fn a_20_kb_json_payload_takes_much_less_memory_compressed() {
    let (_redis, broker) = redis_and_broker();
    let args = order_json(20_000);
    let mut usage = Vec::new();
    for threshold in [0, PayloadLimits::default().compress_above_bytes] {
        let broker = broker.clone().with_payload(PayloadLimits {
            compress_above_bytes: threshold,
            ..Default::default()
        });
        let task = NewTask::new(&queue(), "echo", &args);
        broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
        let bytes: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(broker.keys().task(&task.id))
            .query_async(&mut broker.connection())
            .await
            .unwrap();
        assert_eq!(broker.get(&task.id).await.unwrap().unwrap().args, args);
        usage.push(bytes);
    }
    let json_len = serde_json::to_string(&args).unwrap().len();
    eprintln!(
        "MEMORY USAGE of a task with {json_len} bytes of JSON args: {} bytes plain, {} bytes compressed ({:.1}x less)",
        usage[0],
        usage[1],
        usage[0] as f64 / usage[1] as f64
    );
    assert!(usage[1] * 3 < usage[0], "{usage:?}");
}

#[tokio::test]
async fn arguments_over_the_limit_are_refused_by_the_one_enqueue_path_naming_it() {
    let (_redis, broker) = redis_and_broker();
    let broker = broker.with_payload(PayloadLimits {
        max_args_bytes: 1000,
        ..Default::default()
    });
    let catalog = Catalog::new(&TaskSettings::default());
    let err = catalog
        .prepare(
            &broker,
            "send_email",
            &json!({"to": "a@example.com", "subject": "x", "body": "y".repeat(2000)}),
            &CallOptions::default(),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::ArgsTooLarge { limit: 1000, .. }), "{err:?}");
    assert!(err.to_string().contains("tasks.max_args_bytes"), "{err}");
}
