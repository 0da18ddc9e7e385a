//! `celeriac-bench`'s modes: one at a time; `--latency-only` (the run a scheduler profile
//! wraps) measures the latencies, Celeriac's and the latency yardstick's, and nothing else, so
//! it does not rot; `--archive` compares drains that each start on the same keyspace;
//! `--cluster` measures one node beside Clusters with and without replicas.

use std::process::Command;

use celeriac_testkit::stderr_of_failed_run;
use serde_json::Value;

/// Runs `celeriac-bench --smoke` with `mode` (and its value, if any) and returns its report's
/// rows (measure, value).
fn smoke_rows(mode: &[&str]) -> Vec<(String, f64)> {
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.json", mode[0].trim_start_matches('-')));
    let status = Command::new(env!("CARGO_BIN_EXE_celeriac-bench"))
        .arg("--smoke")
        .args(mode)
        .arg("--json")
        .arg(&json)
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["measure"].as_str().unwrap().to_owned(), row["value"].as_f64().unwrap()))
        .collect()
}

/// The value of the row named `measure`; a missing row fails the test, naming the rows there are.
fn value(rows: &[(String, f64)], measure: &str) -> f64 {
    rows.iter()
        .find(|(m, _)| m == measure)
        .unwrap_or_else(|| panic!("no {measure:?} in {rows:?}"))
        .1
}

#[test]
fn latency_only_measures_the_latencies_and_nothing_else() {
    let rows = smoke_rows(&["--latency-only"]);
    let measures: Vec<&str> = rows.iter().map(|(m, _)| m.as_str()).collect();
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

/// The archive's measures (a PostgreSQL of its own, the archiver, the outbox, history search).
/// Its three drains compare with each other only if each starts on a keyspace of the same
/// size: each drain deletes its tasks' records once timed, or the later drains would run
/// beside the earlier ones' 2,000 records each.
#[test]
fn archive_mode_drains_each_on_the_same_keyspace() {
    let rows = smoke_rows(&["--archive"]);
    let value = |measure: &str| value(&rows, measure);
    let drains = ["archive off", "archive on (archiver stopped)", "archive on (archiver running)"];
    let keys: Vec<f64> = drains
        .iter()
        .map(|d| value(&format!("Redis keys at the drain's start, {d}")))
        .collect();
    // Each drain's 2,000 pending tasks are records already; a handful of other keys (the
    // queues' counters, the archive stream) come and go.
    assert!(keys.iter().all(|&k| k >= 2_000.0), "{keys:?}");
    let spread = keys.iter().copied().fold(f64::MIN, f64::max) - keys.iter().copied().fold(f64::MAX, f64::min);
    assert!(spread < 50.0, "the drains started on keyspaces of {keys:?} keys");
    for d in drains {
        assert!(value(&format!("Redis CPU per drained task, {d}")) > 0.0, "{d}");
    }
    for measure in [
        "archive ingest, 2000 endings waiting in Redis",
        "outbox, commit to pending in Redis, p50",
    ] {
        assert!(value(measure) > 0.0, "{measure}");
    }
}

/// The Cluster comparison: one node, then a Cluster of three masters without replicas (the one
/// node's like for like), then with a replica each, asynchronous and replicated. Each target's
/// Redis CPU is its own run's (the command counters are cleared between targets); only the
/// Clusters with replicas report the replicas' CPU.
#[test]
fn cluster_mode_measures_one_node_beside_clusters_with_and_without_replicas() {
    let rows = smoke_rows(&["--cluster", "6"]);
    let value = |measure: &str| value(&rows, measure);
    assert!(value("one node: Redis CPU per task (enqueue to ack)") > 0.0);
    assert!(value("one node: time in scripts per task (wall clock)") > 0.0);
    for cluster in [
        "Cluster, 3 masters without replicas",
        "Cluster, 3 masters with a replica each",
        "Cluster, durability replicated",
    ] {
        for measure in [
            "Redis CPU per task (enqueue to ack), the masters together",
            "time in scripts per task (wall clock), the masters together",
            "Redis CPU per task, the busiest master",
        ] {
            assert!(value(&format!("{cluster}: {measure}")) > 0.0, "{cluster}: {measure}");
        }
        // The busiest master does at least the average of three and no more than all of them
        // (give or take a rounding: `EPS`).
        const EPS: f64 = 1e-9;
        let together = value(&format!("{cluster}: Redis CPU per task (enqueue to ack), the masters together"));
        let busiest = value(&format!("{cluster}: Redis CPU per task, the busiest master"));
        assert!(
            together / 3.0 <= busiest + EPS && busiest <= together + EPS,
            "{cluster}: {busiest} of {together}"
        );
        // Six shards over three masters: each holds some of the records, the busiest at least
        // a third of them.
        let most = value(&format!("{cluster}: task records on the busiest master"));
        let least = value(&format!("{cluster}: task records on the quietest master"));
        assert!(
            0.0 < least && least <= 100.0 / 3.0 + EPS && 100.0 / 3.0 <= most + EPS && most < 100.0,
            "{cluster}: shares {least} to {most}"
        );
    }
    let replicas = |cluster: &str| format!("{cluster}: Redis CPU per task, the replicas together");
    assert!(
        !rows.iter().any(|(m, _)| *m == replicas("Cluster, 3 masters without replicas")),
        "{rows:?}"
    );
    assert!(value(&replicas("Cluster, 3 masters with a replica each")) > 0.0);
}
