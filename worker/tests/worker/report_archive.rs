//! `generate_report` over a real PostgreSQL archive: a user's report shows exactly the counts
//! of their tagged tasks, month by month up to the current one (not other users', not before
//! the period, not revoked ones), and a worker without an archive says plainly that no history is kept.

use celeriac::builtin::{GenerateReportArgs, ReportFormat};
use celeriac::{QueueName, Task, TaskContext, TaskId};
use celeriac_archive::History;
use celeriac_testkit::postgres::PostgresServer;
use celeriac_worker::tasks::report::GenerateReport;
use chrono::{Datelike, Duration, NaiveDate, Utc};

fn ctx() -> TaskContext {
    TaskContext::detached(TaskId::generate(&QueueName::parse("reports").unwrap()))
}

fn csv_args(user_id: &str) -> GenerateReportArgs {
    GenerateReportArgs {
        user_id: user_id.into(),
        format: ReportFormat::Csv,
    }
}

/// The 10th, at noon UTC, of the month `back` months before the current one.
fn day_in(back: u32) -> NaiveDate {
    let today = Utc::now().date_naive();
    let mut first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    for _ in 0..back {
        first = (first - Duration::days(1)).with_day(1).unwrap();
    }
    first.with_day(10).unwrap()
}

#[tokio::test]
async fn a_report_counts_exactly_the_users_tagged_tasks() {
    let server = PostgresServer::start();
    let history = History::connect(&server.fresh_database(), 2).await.unwrap();
    let (last, before, this) = (day_in(1), day_in(2), day_in(0));
    // (task, state, user tag, day)
    let tasks = [
        ("send_email", "SUCCESS", "u7", last),
        ("send_email", "SUCCESS", "u7", last),
        ("send_email", "FAILURE", "u7", last),
        ("generate_report", "SUCCESS", "u7", last),
        ("send_email", "SUCCESS", "u7", before),
        ("send_email", "REVOKED", "u7", before),
        ("generate_report", "FAILURE", "u7", before),
        ("send_email", "SUCCESS", "u8", last), // another user
        ("send_email", "SUCCESS", "u7", this), // this month so far: the period's last
        ("generate_report", "SUCCESS", "u7", this),
        ("send_email", "SUCCESS", "u7", day_in(12)), // before the period
    ];
    for (i, (task, state, user, day)) in tasks.iter().enumerate() {
        celeriac_archive::sqlx::query(
            "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, attempts, deliveries, finished_at, tags)
             VALUES ($1, $2, 'default', $3, '{}', 1, 1, ($4::date + time '12:00') AT TIME ZONE 'UTC', jsonb_build_object('user_id', $5::text))",
        )
        .bind(format!("t{i}"))
        .bind(task)
        .bind(state)
        .bind(day)
        .bind(user)
        .execute(history.pool())
        .await
        .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let out = GenerateReport::new(dir.path())
        .with_history(history)
        .run(ctx(), csv_args("u7"))
        .await
        .unwrap();
    assert_eq!((out["history"].as_bool(), out["rows"].as_u64()), (Some(true), Some(12)), "{out}");
    let csv = std::fs::read_to_string(dir.path().join(out["file_name"].as_str().unwrap())).unwrap();
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 13, "{csv}");
    assert_eq!(lines[0], "month,emails_sent,reports_generated,failures");
    let month = |d: NaiveDate| d.format("%Y-%m").to_string();
    assert_eq!(lines[12], format!("{},1,1,0", month(this)), "{csv}");
    assert_eq!(lines[11], format!("{},2,1,1", month(last)), "{csv}");
    assert_eq!(lines[10], format!("{},1,0,1", month(before)), "{csv}");
    for line in &lines[1..10] {
        assert!(line.ends_with(",0,0,0"), "a month with no tasks: {line}\n{csv}");
    }
    assert!(lines[1].starts_with(&month(day_in(11))), "{csv}");
}

#[tokio::test]
async fn without_an_archive_the_report_says_no_history_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = GenerateReport::new(dir.path()).run(ctx(), csv_args("u7")).await.unwrap();
    assert_eq!((out["history"].as_bool(), out["rows"].as_u64()), (Some(false), Some(0)), "{out}");
    assert!(out["note"].as_str().unwrap().starts_with("No history is kept"), "{out}");
    let csv = std::fs::read_to_string(dir.path().join(out["file_name"].as_str().unwrap())).unwrap();
    assert!(csv.starts_with("note\r\n\"No history is kept"), "{csv}");
    assert!(!csv.chars().any(|c| c.is_ascii_digit()), "no figures: {csv}");
}
