//! The task run end to end into a temporary folder: files, output, progress, cancellation.

use super::*;
use celeriac::TaskId;

fn ctx() -> TaskContext {
    TaskContext::detached(TaskId::generate(&QueueName::parse("reports").unwrap()))
}

fn args(user_id: &str, format: ReportFormat) -> GenerateReportArgs {
    GenerateReportArgs {
        user_id: user_id.into(),
        format,
    }
}

#[tokio::test]
async fn csv_reports_land_in_the_folder_and_say_no_history_is_kept_without_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let task = GenerateReport::new(dir.path().join("reports"));
    let (ctx_a, ctx_b) = (ctx(), ctx());
    let a = task.run(ctx_a.clone(), args("user-42", ReportFormat::Csv)).await.unwrap();
    let b = task.run(ctx_b, args("user-42", ReportFormat::Csv)).await.unwrap();

    let file_name = format!("{}.csv", ctx_a.task_id());
    assert_eq!(a["file_name"], file_name.as_str());
    assert_eq!(
        (a["format"].as_str(), a["rows"].as_u64(), a["user_id"].as_str()),
        (Some("csv"), Some(0), Some("user-42"))
    );
    assert_eq!((a["history"].as_bool(), a["note"].as_str()), (Some(false), Some(data::NO_HISTORY)));
    let path = dir.path().join("reports").join(&file_name);
    assert!(a.get("path").is_none(), "no server path in a result: {a}");
    assert!(!a.to_string().contains(&dir.path().display().to_string()), "{a}");
    let content = std::fs::read_to_string(&path).unwrap();
    assert_eq!(a["size_bytes"].as_u64(), Some(std::fs::metadata(&path).unwrap().len()));
    let lines: Vec<&str> = content.split_terminator("\r\n").collect();
    assert_eq!(lines, ["note", &format!("\"{}\"", data::NO_HISTORY)]);
    let other_path = dir.path().join("reports").join(b["file_name"].as_str().unwrap());
    let other = std::fs::read_to_string(other_path).unwrap();
    assert_eq!(content, other, "same user, same report");
    let leftovers = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "tmp"));
    assert_eq!(leftovers.count(), 0);
}

#[tokio::test]
async fn pdf_reports_are_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let out = GenerateReport::new(dir.path())
        .run(ctx(), args("ada_1", ReportFormat::Pdf))
        .await
        .unwrap();
    assert_eq!(out["format"], "pdf");
    let bytes = std::fs::read(dir.path().join(out["file_name"].as_str().unwrap())).unwrap();
    assert_eq!(out["size_bytes"].as_u64(), Some(bytes.len() as u64));
    pdf::tests::assert_well_formed(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("(Activity report for user ada_1) Tj"));
    assert!(text.contains("(User: ada_1) Tj") && text.contains("(Generated: "));
    assert!(
        text.contains("(No history is kept: ") && !text.contains("(Total) Tj"),
        "a note, no table"
    );
}

/// Keeps every progress report.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(u64, u64, String)>>);

impl ProgressSink for Recorder {
    async fn report(&self, current: u64, total: u64, message: &str) -> Result<(), TaskError> {
        self.0.lock().unwrap().push((current, total, message.to_owned()));
        Ok(())
    }
}

#[tokio::test]
async fn progress_climbs_step_by_step_to_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, recorder) = (ctx(), Recorder::default());
    GenerateReport::new(dir.path())
        .generate(&ctx, &recorder, args("u1", ReportFormat::Pdf))
        .await
        .unwrap();
    let steps = recorder.0.into_inner().unwrap();
    assert_eq!(steps.len(), 3);
    assert!(
        steps
            .iter()
            .enumerate()
            .all(|(i, (current, total, _))| *current == i as u64 + 1 && *total == 3)
    );
    assert_eq!(steps[0].2, "No history is kept");
    assert_eq!(steps[2].2, "Report ready");
    // Through the detached context, progress is accepted silently.
    assert!(
        GenerateReport::new(dir.path())
            .run(ctx, args("u1", ReportFormat::Csv))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_cancelled_run_stops_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx();
    ctx.cancellation().cancel();
    let err = GenerateReport::new(dir.path().join("r"))
        .run(ctx, args("u1", ReportFormat::Pdf))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("Cancelled", false));
    assert!(!dir.path().join("r").exists());
}

#[tokio::test]
async fn bad_user_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = GenerateReport::new(dir.path())
        .run(ctx(), args("../etc", ReportFormat::Csv))
        .await
        .unwrap_err();
    assert_eq!((err.kind.as_str(), err.retryable), ("InvalidArgs", false));
}

#[test]
fn spec_matches_the_builtin_one() {
    let builtin = celeriac::builtin::specs().into_iter().find(|s| s.name == GENERATE_REPORT).unwrap();
    let spec = GenerateReport::new("x").spec();
    assert_eq!(
        (spec.name, spec.queue, spec.options),
        (builtin.name, builtin.queue, builtin.options)
    );
}
