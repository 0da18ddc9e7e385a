//! The history from the command line, against a real PostgreSQL archive: `call --tag`, then
//! `tasks` searching the archive by tag, arguments, error words and time, in both forms, and
//! `status` of a task whose Redis record has expired, read from the archive with its tags, and
//! `retry` of such a task.

use std::time::Duration;

use crate::common::{Run, Stack, until};

/// The task ids of a `--json tasks` run, in its order.
fn ids(run: Run) -> Vec<String> {
    let page = run.expect_code(0).json();
    let tasks = page["tasks"].as_array().unwrap_or_else(|| panic!("a list of tasks: {page}"));
    tasks.iter().map(|t| t["task_id"].as_str().unwrap().to_owned()).collect()
}

/// Enqueues `task` with `args` and the extra options, waits for its end and returns its id.
fn run_to_end(stack: &Stack, task: &str, args: &str, extra: &[&str], code: i32) -> String {
    let mut argv = vec!["--json", "call", task, "--args", args, "--wait"];
    argv.extend_from_slice(extra);
    // A failed run prints its record too, before its error line.
    let record = stack.celeriac(&argv).expect_code(code).json();
    record["task_id"].as_str().expect("a task id").to_owned()
}

#[test]
fn the_archive_is_searched_by_tag_arguments_error_and_time_and_read_once_a_record_expired() {
    let stack = Stack::with_archive("5s");
    let tagged = run_to_end(&stack, "sleep", r#"{"ms": 1}"#, &["--tag", "user_id=42", "--tag", "tenant=acme"], 0);
    // The live listing filters by tag too (while the record lasts: 5 s).
    let live = stack.celeriac(&["--json", "tasks", "--source", "live", "--tag", "user_id=42"]);
    assert_eq!(ids(live), [tagged.as_str()]);
    let plain = run_to_end(&stack, "sleep", r#"{"ms": 2}"#, &[], 0);
    let failed = run_to_end(&stack, "fail", r#"{"message": "disk full"}"#, &["--max-retries", "0"], 4);
    until(Duration::from_secs(30), "the three tasks to be archived", || {
        let run = stack.celeriac(&["--json", "tasks", "--source", "archive"]);
        run.code == 0 && ids(run).len() == 3
    });

    // Each filter keeps exactly its task (the archive is implied by --args and --error).
    let search = |filter: &[&str]| {
        let mut argv = vec!["--json", "tasks"];
        argv.extend_from_slice(filter);
        ids(stack.celeriac(&argv))
    };
    assert_eq!(search(&["--source", "archive", "--tag", "user_id=42"]), [tagged.as_str()]);
    assert_eq!(search(&["--source", "archive", "--tag", "tenant:acme"]), [tagged.as_str()]);
    assert_eq!(search(&["--args", r#"{"ms": 2}"#]), [plain.as_str()]);
    assert_eq!(search(&["--error", "disk full"]), [failed.as_str()]);
    let later = "2999-01-01T00:00:00Z";
    assert_eq!(search(&["--from", later]), Vec::<&str>::new());
    assert_eq!(search(&["--to", later]), [failed.as_str(), plain.as_str(), tagged.as_str()]);
    // A time the gateway cannot read: exit 1, one line naming the field.
    let run = stack.celeriac(&["tasks", "--from", "yesterday"]).expect_code(1);
    assert!(run.one_error_line().contains("invalid_field (422): from"), "{run:?}");

    // The table shows the tags when a task listed has some.
    let table = stack
        .celeriac(&["tasks", "--source", "archive", "--tag", "user_id=42"])
        .expect_code(0);
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("ID") && header.ends_with("TAGS"), "{table:?}");
    assert!(
        table.stdout.contains(&tagged) && table.stdout.contains("tenant:acme user_id:42"),
        "{table:?}"
    );
    let table = stack.celeriac(&["tasks", "--error", "disk full"]).expect_code(0);
    assert!(!table.stdout.contains("TAGS"), "no tags, no column: {table:?}");

    // Once its Redis record has expired (5 s), `status` reads the task from the archive.
    until(Duration::from_secs(30), "the record to be read from the archive", || {
        stack.celeriac(&["--json", "status", &tagged]).json()["archived"] == true
    });
    let status = stack.celeriac(&["status", &tagged]).expect_code(0);
    let line = |name: &str| status.stdout.lines().find(|l| l.starts_with(name)).map(str::to_owned);
    assert_eq!(
        line("state").as_deref().map(str::split_whitespace).and_then(|mut w| w.nth(1)),
        Some("SUCCESS")
    );
    assert!(line("tags").is_some_and(|l| l.ends_with("tenant:acme user_id:42")), "{status:?}");
    assert!(line("source").is_some_and(|l| l.contains("the archive")), "{status:?}");

    // `retry` of a task only the archive holds: a success is refused; a revoked task runs
    // again under its id, live.
    let run = stack.celeriac(&["retry", &tagged]).expect_code(1);
    assert!(
        run.one_error_line().contains("only failed or revoked tasks can be retried"),
        "{run:?}"
    );
    let queued = stack.celeriac(&["--json", "call", "add", "--args", "[20, 1]", "--countdown", "3600"]);
    let revoked = queued.expect_code(0).json()["task_id"].as_str().unwrap().to_owned();
    stack.celeriac(&["revoke", &revoked]).expect_code(0);
    until(Duration::from_secs(30), "the revoked task to be read from the archive", || {
        stack.celeriac(&["--json", "status", &revoked]).json()["archived"] == true
    });
    let run = stack.celeriac(&["retry", &revoked]).expect_code(0);
    assert_eq!(run.stdout.trim(), format!("{revoked}  queued"));
    until(Duration::from_secs(30), "the retried task to succeed, live", || {
        let record = stack.celeriac(&["--json", "status", &revoked]).json();
        record["state"] == "SUCCESS" && record["result"] == 21 && record.get("archived").is_none()
    });
}

#[test]
fn bad_history_filters_and_tags_are_refused_naming_them() {
    let stack = Stack::gateway_only();
    // Refused by the tool itself: usage errors, exit 2.
    let run = stack.celeriac(&["tasks", "--args", "{not json"]).expect_code(2);
    assert!(run.one_error_line().contains("--args: not JSON"), "{run:?}");
    let run = stack.celeriac(&["tasks", "--source", "elsewhere"]).expect_code(2);
    assert!(run.stderr.contains("--source") && run.stderr.contains("archive"), "{run:?}");
    let run = stack.celeriac(&["tasks", "--tag", "novalue"]).expect_code(2);
    assert!(run.stderr.contains("--tag") && run.stderr.contains("NAME=VALUE"), "{run:?}");
    let run = stack.celeriac(&["call", "add", "--args", "[1, 2]", "--tag", "=42"]).expect_code(2);
    assert!(run.stderr.contains("no tag name"), "{run:?}");
    // Refused by the gateway: exit 1, one line naming the field.
    let run = stack.celeriac(&["tasks", "--source", "archive"]).expect_code(1);
    assert!(run.one_error_line().contains("no archive is configured"), "{run:?}");
    let run = stack
        .celeriac(&["call", "add", "--args", "[1, 2]", "--tag", "bad name=1"])
        .expect_code(1);
    assert!(run.one_error_line().contains("tags"), "{run:?}");
}
