//! `worker.threads` and `--threads` set the threads of the worker's async runtime: the worker
//! says how many it runs on as it starts (the runtime's own count), the flag wins over the
//! setting, a worker of one thread runs its tasks, and a bad number stops the start in one
//! line naming it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use celeriac::TaskState;
use celeriac_testkit::RedisServer;
use serde_json::json;

use crate::common::{Setup, WorkerProcess};

const DEADLINE: Duration = Duration::from_secs(60);

/// A worker on `default` with `args` and `env`, its log lines (stdout, at `info`) sent on.
fn worker(setup: &Setup, args: &[&str], env: &[(&str, &str)]) -> (WorkerProcess, mpsc::Receiver<String>) {
    let mut cmd = setup.worker_command(args);
    cmd.env("RUST_LOG", "celeriac_worker=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn celeriac-worker");
    let (send, lines) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let send = send.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
    }
    (WorkerProcess { child }, lines)
}

/// The `threads` the worker's start line reports.
fn started_on(lines: &mpsc::Receiver<String>) -> usize {
    loop {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("the worker's start line");
        if line.contains("worker starting") {
            let value = line.split("threads=").nth(1).unwrap_or_else(|| panic!("no threads in: {line}"));
            return value.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setting_and_the_flag_set_the_runtime_s_threads_and_one_thread_runs_tasks() {
    let setup = Setup::new(RedisServer::start());
    let (_three, lines) = worker(&setup, &[], &[("CELERIAC__WORKER__THREADS", "3")]);
    assert_eq!(started_on(&lines), 3, "the setting");
    drop(_three);

    let (_one, lines) = worker(&setup, &["--threads", "1"], &[("CELERIAC__WORKER__THREADS", "3")]);
    assert_eq!(started_on(&lines), 1, "the flag wins over the setting");
    let ids = setup.enqueue_many("add", &(0..50).map(|i| json!([i, 1])).collect::<Vec<_>>()).await;
    let records = setup.wait_all(&ids, TaskState::Success, DEADLINE).await;
    let sums: Vec<_> = records.iter().map(|r| r.result.clone().unwrap()).collect();
    assert_eq!(sums, (0..50).map(|i| json!(i + 1)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_number_of_threads_stops_the_start_in_one_line_naming_it() {
    let setup = Setup::new(RedisServer::start());
    for (args, env, named) in [
        (&["--threads", "0"][..], &[][..], "--threads"),
        (&[][..], &[("CELERIAC__WORKER__THREADS", "0")][..], "worker.threads"),
        (&[][..], &[("CELERIAC__WORKER__THREADS", "1025")][..], "worker.threads"),
    ] {
        let (mut process, lines) = worker(&setup, args, env);
        let status = process.wait_exit(Duration::from_secs(20)).expect("the worker ends at start");
        assert!(!status.success());
        let output: Vec<String> = lines.iter().collect();
        let errors: Vec<&String> = output.iter().filter(|l| l.starts_with("Error: ")).collect();
        assert_eq!(errors.len(), 1, "{args:?} {env:?}: {output:?}");
        assert!(errors[0].contains(named) && errors[0].contains("must be 1 to 1024"), "{errors:?}");
    }
}
