//! `celeriac-bench`'s "only" modes: one at a time, and `--latency-only` (the run a scheduler
//! profile wraps) measures the latencies, Celeriac's and the latency yardstick's, and nothing
//! else, so it does not rot.

use std::process::Command;

use celeriac_testkit::stderr_of_failed_run;
use serde_json::Value;

#[test]
fn latency_only_measures_the_latencies_and_nothing_else() {
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("latency-only.json");
    let status = Command::new(env!("CARGO_BIN_EXE_celeriac-bench"))
        .args(["--smoke", "--latency-only", "--json"])
        .arg(&json)
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let measures: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["measure"].as_str().unwrap())
        .collect();
    for wanted in [
        "enqueue to STARTED, idle worker, p99",
        "enqueue to SUCCESS, idle worker, p99",
        "enqueue to SUCCESS, worker under load (2000 other tasks/s), p99",
        "latency yardstick: enqueue to STARTED, idle worker, p99",
        "latency yardstick: enqueue to SUCCESS, worker under load (2000 other tasks/s), p99",
    ] {
        assert!(measures.contains(&wanted), "{wanted} in {measures:?}");
    }
    for skipped in ["HTTP", "lifecycle", "enqueue, batches"] {
        assert!(!measures.iter().any(|m| m.starts_with(skipped)), "no {skipped} row in {measures:?}");
    }
}

#[test]
fn two_modes_at_once_are_refused_naming_both() {
    let stderr = stderr_of_failed_run(env!("CARGO_BIN_EXE_celeriac-bench"), &["--latency-only", "--archive"]);
    assert!(stderr.contains("--latency-only") && stderr.contains("--archive"), "{stderr}");
}
