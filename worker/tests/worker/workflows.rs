//! A chord of 1,000 members completes, with its callback run exactly once, while a worker is
//! SIGKILLed and replaced in the middle.

use std::time::Duration;

use celeriac::TaskState;
use celeriac::workflow::{Plan, Step, WorkflowSpec};
use serde_json::json;

use crate::common::Setup;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_member_chord_survives_a_killed_worker_and_calls_back_once() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let group: Vec<Step> = (0..1000).map(|i| Step::task("sleep", json!({"ms": (i % 5) + 1}))).collect();
    let spec: WorkflowSpec = Step::chord(group, Step::task("echo", serde_json::Value::Null));
    let plan = Plan::compile(&spec).unwrap();
    let started = setup.broker.start_workflow(&plan).await.unwrap();
    let mut first = setup.worker(16);
    celeriac_testkit::eventually(Duration::from_secs(60), "a few hundred members done", || async {
        let status = setup.broker.workflow_status(&started.workflow_id).await.ok()??;
        (status.members.iter().filter(|m| m.state == "SUCCESS").count() >= 300).then_some(())
    })
    .await;
    first.kill();
    let _second = setup.worker(16);
    let status = celeriac_testkit::eventually(Duration::from_secs(90), "the chord finishes", || async {
        let status = setup.broker.workflow_status(&started.workflow_id).await.ok()??;
        (status.state != "RUNNING").then_some(status)
    })
    .await;
    assert_eq!(status.state, "SUCCESS");
    let callback_id = celeriac::TaskId::parse(&started.tasks[1000].task_id).unwrap();
    let callback = setup.wait_state(&callback_id, TaskState::Success, Duration::from_secs(10)).await;
    assert_eq!(callback.deliveries, 1, "the callback ran exactly once");
    let results = callback.result.unwrap();
    assert_eq!(results.as_array().unwrap().len(), 1000, "the callback saw every member's result");
    assert_eq!(status.result.unwrap(), results);
    setup.assert_invariants().await;
}
