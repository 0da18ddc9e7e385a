//! Payload limits and compression through a real worker: large arguments, stored compressed,
//! reach the task as they were sent and its large result reads back identical; a result over
//! `tasks.max_result_bytes` ends the task in a clear FAILURE, never a Redis error.

use std::time::Duration;

use celeriac::TaskState;

use celeriac_testkit::order_json;

use crate::common::Setup;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_arguments_and_results_are_stored_compressed_and_read_back_identical() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let args = order_json(20_000);
    let id = setup.enqueue("echo", args.clone()).await;
    let _worker = setup.worker(1);
    let record = setup.wait_state(&id, TaskState::Success, DEADLINE).await;
    assert_eq!(record.args, args);
    assert_eq!(
        record.result,
        Some(args),
        "the task got its arguments whole and its result reads back"
    );
    let stored: Vec<String> = redis::cmd("HMGET")
        .arg(setup.broker.keys().task(&id))
        .arg("t")
        .arg("r")
        .query_async(&mut setup.broker.connection())
        .await
        .unwrap();
    assert!(
        stored.iter().all(|f| f.contains(celeriac::payload::MARKER)),
        "both stored compressed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_over_the_limit_is_a_failure_of_its_own_kind() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let id = setup.enqueue("echo", order_json(5_000)).await;
    let _worker = setup.worker_with(1, &[("CELERIAC__TASKS__MAX_RESULT_BYTES", "1000")]);
    let record = setup.wait_state(&id, TaskState::Failure, DEADLINE).await;
    let error = record.error.expect("an error");
    assert_eq!(error.kind, "ResultTooLarge", "{error:?}");
    assert!(error.message.contains("tasks.max_result_bytes"), "{}", error.message);
    assert_eq!(record.result, None);
}
