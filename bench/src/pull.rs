//! `--pull-python T`: the pull protocol's throughput with one Python worker process of T
//! threads. The measure itself is Python (`bench/python/pull_throughput.py`: its own gateway
//! from the binaries beside this one, N no-op tasks on a queue no native worker takes, one
//! Python process claiming and completing them over HTTP, every task checked SUCCESS); this
//! runs it and puts its figure in the report.

use std::process::Command;

use crate::report::Report;

pub fn run(report: &mut Report, python: &str, tasks: usize, threads: usize) -> anyhow::Result<()> {
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("the bench binary has no folder"))?;
    let out = Command::new(python)
        .arg("bench/python/pull_throughput.py")
        .args(["--tasks", &tasks.to_string(), "--concurrency", &threads.to_string()])
        .env("CELERIAC_BIN_DIR", &bin_dir)
        .output()
        .map_err(|e| anyhow::anyhow!("{python}: {e} (scripts/python/env.sh makes target/pyenv)"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "pull_throughput.py failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
    let rate = figures["tasks_per_second"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("no tasks_per_second in {figures}"))?;
    report.add(
        &format!("pull protocol, one Python worker process, {threads} thread(s), {tasks} no-op tasks"),
        rate,
        "tasks/s",
    );
    Ok(())
}
