//! The `celeriac` commands against a real gateway and worker: results, `--json` output,
//! exit codes, one-line errors, the purge guard, retries and revokes, schedules.

use std::time::Duration;

use crate::common::{Stack, TOKEN, until};
use serde_json::Value;

#[test]
fn call_with_wait_prints_the_result_and_exits_by_the_tasks_outcome() {
    let stack = Stack::with_worker();

    let run = stack.celeriac(&["call", "add", "--args", "[2, 3]", "--wait"]).expect_code(0);
    assert_eq!(run.stdout.trim(), "5", "{run:?}");

    // Without a terminal the course is plain lines on stderr; stdout is only the record.
    let run = stack
        .celeriac(&["--json", "call", "sleep", "--args", r#"{"ms": 300}"#, "--wait"])
        .expect_code(0);
    let record = run.json();
    assert_eq!(record["state"], "SUCCESS");
    assert_eq!(record["result"], serde_json::json!({ "slept_ms": 300 }));
    let id = record["task_id"].as_str().unwrap();
    assert!(run.stderr.contains(&format!("{id} progress 10/10")), "{run:?}");
    assert!(run.stderr.contains(&format!("{id} SUCCESS")), "{run:?}");

    let run = stack
        .celeriac(&["call", "fail", "--args", r#"{"message": "boom"}"#, "--wait"])
        .expect_code(4);
    let line = run.last_error_line();
    assert!(line.contains("FAILURE") && line.contains("boom"), "{run:?}");

    // status, tasks, queues and workers in both forms.
    let status = stack.celeriac(&["--json", "status", id]).expect_code(0).json();
    assert_eq!(status["task_id"], id);
    assert_eq!(status["state"], "SUCCESS");
    let human = stack.celeriac(&["status", id]).expect_code(0);
    assert!(
        human.stdout.lines().any(|l| l.starts_with("state") && l.ends_with("SUCCESS")),
        "{human:?}"
    );

    let listing = stack
        .celeriac(&["--json", "tasks", "--state", "SUCCESS", "--task", "sleep"])
        .expect_code(0)
        .json();
    let ids: Vec<&str> = listing["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id]);
    let all = stack.celeriac(&["--json", "tasks", "--all", "--limit", "1"]).expect_code(0).json();
    assert_eq!(all["tasks"].as_array().unwrap().len(), 3, "three tasks, one page each: {all}");
    assert_eq!(all["next_cursor"], Value::Null);
    let table = stack.celeriac(&["tasks", "--limit", "1"]).expect_code(0);
    assert!(
        table.stdout.starts_with("ID") && table.stdout.contains("more: --cursor "),
        "{table:?}"
    );

    let queues = stack.celeriac(&["--json", "queues"]).expect_code(0).json();
    let default = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "default")
        .expect("queue default");
    assert_eq!(default["dead"], 1, "the failed task is a dead letter: {default}");
    let table = stack.celeriac(&["queues"]).expect_code(0);
    assert!(table.stdout.lines().any(|l| l.starts_with("default ")), "{table:?}");

    let workers = stack.celeriac(&["--json", "workers"]).expect_code(0).json();
    assert_eq!(workers["workers"][0]["queues"], serde_json::json!(["default"]));
    let table = stack.celeriac(&["workers"]).expect_code(0);
    assert!(table.stdout.contains("0/4") || table.stdout.contains("1/4"), "{table:?}");
}

#[test]
fn errors_are_one_line_with_their_exit_code() {
    let stack = Stack::gateway_only();

    let run = stack
        .celeriac(&["status", "default-0193a1b2c3d4e5f60718293a4b5c6d7e"])
        .expect_code(1);
    assert!(run.one_error_line().starts_with("celeriac: not_found (404): "), "{run:?}");
    assert!(run.stdout.is_empty());

    let run = stack.celeriac(&["call", "no_such_task", "--args", "[]"]).expect_code(1);
    let line = run.one_error_line();
    assert!(
        line.contains("unknown_task (422)") && line.contains("known: ") && line.contains("add"),
        "{run:?}"
    );

    let run = stack
        .celeriac(&["call", "add", "--args", "[1]", "--queue", "bad queue!"])
        .expect_code(1);
    assert!(run.one_error_line().contains("invalid_field (422): queue"), "{run:?}");

    // Usage: bad JSON, a missing subcommand argument, an unknown flag.
    let run = stack.celeriac(&["call", "add", "--args", "{not json"]).expect_code(2);
    assert!(run.one_error_line().contains("--args: not JSON"), "{run:?}");
    stack.celeriac(&["status"]).expect_code(2);
    stack.celeriac(&["queues", "--no-such-flag"]).expect_code(2);

    // The token: none, then a wrong one; the flag wins over the environment.
    let mut command = stack.command();
    command.env_remove("CELERIAC_TOKEN").arg("queues");
    let run = crate::common::run(command).expect_code(1);
    assert!(run.one_error_line().contains("unauthorized (401)"), "{run:?}");
    let run = stack.celeriac(&["--token", "wrong", "queues"]).expect_code(1);
    assert!(run.one_error_line().contains("unauthorized (401)"), "{run:?}");
    stack.celeriac(&["--token", TOKEN, "queues"]).expect_code(0);

    // Nobody listening: exit 3, one line naming the address.
    let closed = format!("http://127.0.0.1:{}", celeriac_testkit::free_port());
    let run = stack.celeriac(&["--url", &closed, "queues"]).expect_code(3);
    let line = run.one_error_line();
    assert!(line.contains("cannot reach the gateway at") && line.contains(&closed), "{run:?}");
    let run = stack.celeriac(&["--url", "ftp://x", "queues"]).expect_code(2);
    assert!(run.one_error_line().contains("CELERIAC_URL"), "{run:?}");
}

#[test]
fn purge_is_refused_without_yes_when_nobody_can_confirm() {
    let stack = Stack::gateway_only();
    for n in 0..3 {
        stack.enqueue("add", &format!("[{n}]"));
    }
    let pending = || stack.pending("default");
    assert_eq!(pending(), 3);

    let run = stack.celeriac(&["purge", "default"]).expect_code(2);
    assert!(run.one_error_line().contains("pass --yes"), "{run:?}");
    assert_eq!(pending(), 3, "nothing was purged");

    let run = stack.celeriac(&["--json", "purge", "default", "--yes"]).expect_code(0);
    assert_eq!(run.json()["removed"], 3);
    assert_eq!(pending(), 0);

    let paused = stack.celeriac(&["--json", "pause", "default"]).expect_code(0).json();
    assert_eq!(paused["paused"], true);
    let run = stack.celeriac(&["resume", "default"]).expect_code(0);
    assert_eq!(run.stdout.trim(), "queue default is running (0 pending)");
}

#[test]
fn retry_and_revoke_act_on_tasks_and_on_a_queues_dead_letters() {
    let stack = Stack::with_worker();
    let mut failed = Vec::new();
    for _ in 0..2 {
        let run = stack
            .celeriac(&["--json", "call", "fail", "--args", r#"{"message": "no"}"#, "--wait"])
            .expect_code(4);
        failed.push(run.json()["task_id"].as_str().unwrap().to_owned());
    }

    // One by one from the dead letters (the gateway has no bulk retry).
    let run = stack.celeriac(&["--json", "retry", "--dead", "default"]).expect_code(0);
    let mut retried: Vec<String> = serde_json::from_value(run.json()["retried"].clone()).unwrap();
    retried.sort();
    failed.sort();
    assert_eq!(retried, failed);
    for id in &failed {
        until(Duration::from_secs(20), "the retried task fails again", || {
            let record = stack.celeriac(&["--json", "status", id]).json();
            record["state"] == "FAILURE"
        });
    }
    let run = stack.celeriac(&["retry", &failed[0]]).expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{}  queued", failed[0]));

    // A finished success cannot be retried: the gateway's 409, one line.
    let ok = stack
        .celeriac(&["--json", "call", "add", "--args", "[1]", "--wait"])
        .expect_code(0)
        .json();
    let ok_id = ok["task_id"].as_str().unwrap();
    let run = stack.celeriac(&["retry", ok_id]).expect_code(1);
    assert!(run.one_error_line().contains("conflict (409)"), "{run:?}");

    // A scheduled task is revoked and never runs.
    let later = stack
        .celeriac(&["--json", "call", "add", "--args", "[1]", "--countdown", "60"])
        .expect_code(0)
        .json();
    assert_eq!(later["state"], "SCHEDULED");
    let id = later["task_id"].as_str().unwrap();
    let run = stack.celeriac(&["--json", "revoke", id]).expect_code(0);
    assert_eq!(run.json()["outcome"], "revoked");
    assert_eq!(stack.celeriac(&["--json", "status", id]).json()["state"], "REVOKED");

    // A running task is cancelled with --terminate; the waiting caller sees REVOKED: exit 4.
    let mut waiting = stack.command();
    waiting.args(["--json", "call", "sleep", "--args", r#"{"ms": 20000}"#, "--wait"]);
    let waiter = std::thread::spawn(move || crate::common::run(waiting));
    let mut running = String::new();
    until(Duration::from_secs(20), "the sleep task starts", || {
        let page = stack.celeriac(&["--json", "tasks", "--state", "STARTED", "--task", "sleep"]).json();
        running = page["tasks"][0]["task_id"].as_str().unwrap_or_default().to_owned();
        !running.is_empty()
    });
    let run = stack.celeriac(&["--json", "revoke", &running, "--terminate"]).expect_code(0);
    assert_eq!(run.json()["outcome"], "signalled");
    let waited = waiter.join().unwrap().expect_code(4);
    assert!(
        ["REVOKED", "FAILURE"].contains(&waited.json()["state"].as_str().unwrap()),
        "{waited:?}"
    );
}

#[test]
fn schedules_are_listed_fired_paused_and_resumed() {
    let stack = Stack::gateway_only();
    // The CLI does not create schedules: PUT one straight to the gateway.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .put(format!("{}/schedules/hourly-add", stack.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "task": "add", "args": [1, 2], "every": "1h" }))
            .send()
            .await
            .expect("PUT /schedules/hourly-add")
            .status()
    });
    assert_eq!(status, 201);

    let list = stack.celeriac(&["--json", "schedules"]).expect_code(0).json();
    assert_eq!(list["schedules"][0]["name"], "hourly-add");
    let table = stack.celeriac(&["schedules", "list"]).expect_code(0);
    assert!(
        table.stdout.contains("hourly-add") && table.stdout.contains("every 1h"),
        "{table:?}"
    );

    let paused = stack
        .celeriac(&["--json", "schedules", "pause", "hourly-add"])
        .expect_code(0)
        .json();
    assert_eq!(paused["paused"], true);
    let fired = stack.celeriac(&["--json", "schedules", "run", "hourly-add"]).expect_code(0).json();
    let id = fired["task_id"].as_str().unwrap();
    assert_eq!(stack.celeriac(&["--json", "status", id]).json()["args"], serde_json::json!([1, 2]));
    let run = stack.celeriac(&["schedules", "resume", "hourly-add"]).expect_code(0);
    assert!(run.stdout.starts_with("schedule hourly-add is active"), "{run:?}");

    let run = stack.celeriac(&["schedules", "pause", "nope"]).expect_code(1);
    assert!(run.one_error_line().contains("not_found (404)"), "{run:?}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_celeriac"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success());
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("celeriac") && script.contains("purge"), "{shell}: {script}");
    }
}
