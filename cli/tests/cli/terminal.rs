//! The commands that talk to a person, in a real terminal: each runs inside a detached tmux
//! session (a tmux server of the test's own), its screen read with `capture-pane` and keys
//! typed with `send-keys`. `top` draws the queues and workers, shows a change on a later
//! refresh and quits on `q`; `purge` asks and purges only on `y`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{Stack, TOKEN, until};

/// A tmux server of this test's own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server named after this process and `name`, running `script` (sh) in session
    /// `top` on a 160x40 screen.
    fn start(name: &str, script: &str) -> Self {
        let tmux = Self {
            socket: format!("celeriac-cli-{name}-{}", std::process::id()),
        };
        let started = tmux.run(&["new-session", "-d", "-s", "top", "-x", "160", "-y", "40", "sh", "-c", script]);
        assert!(started.status.success(), "tmux new-session: {started:?}");
        tmux
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        let sent = self.run(&args);
        assert!(sent.status.success(), "tmux send-keys: {sent:?}");
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs (scripts/test.sh installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn top_shows_the_queues_live_and_quits_on_q() {
    let stack = Stack::with_worker();
    stack.enqueue("add", "[1, 1]");
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit-code");
    let script = format!(
        "CELERIAC_URL={} CELERIAC_TOKEN={TOKEN} {} top --interval 0.5; echo $? > {}",
        stack.url,
        env!("CARGO_BIN_EXE_celeriac"),
        exit_file.display()
    );
    let tmux = Tmux::start("top", &script);

    let mut screen = String::new();
    until(Duration::from_secs(20), "top draws the queue and the worker", || {
        screen = tmux.screen();
        screen.contains("Queues (") && screen.lines().any(|l| l.contains("│default ")) && screen.contains("Workers (1)")
    });
    assert!(screen.contains("celeriac top") && screen.contains("running"), "{screen}");

    // A change on the gateway shows on a later refresh, without touching the terminal.
    stack.celeriac(&["pause", "default"]).expect_code(0);
    until(Duration::from_secs(10), "top shows the queue paused", || {
        screen = tmux.screen();
        screen.lines().any(|l| l.contains("│default ") && l.contains("paused"))
    });

    tmux.keys(&["q"]);
    until(Duration::from_secs(10), "top exits after q", || exit_code(&exit_file).is_some());
    assert_eq!(exit_code(&exit_file), Some(0), "top's exit code; last screen:\n{screen}");
}

#[test]
fn purge_asks_on_a_terminal_and_purges_only_on_yes() {
    let stack = Stack::gateway_only();
    stack.enqueue("add", "[1]");
    stack.enqueue("add", "[2]");
    let pending = || stack.pending("default");
    let dir = tempfile::tempdir().unwrap();
    for (answer, code, left) in [("n", 2, 2), ("y", 0, 0)] {
        let exit_file = dir.path().join(format!("exit-{answer}"));
        let script = format!(
            "CELERIAC_URL={} CELERIAC_TOKEN={TOKEN} {} purge default; echo $? > {}",
            stack.url,
            env!("CARGO_BIN_EXE_celeriac"),
            exit_file.display()
        );
        let tmux = Tmux::start(&format!("purge-{answer}"), &script);
        until(Duration::from_secs(10), "purge asks", || tmux.screen().contains("[y/N]"));
        assert_eq!(pending(), 2, "nothing is purged before the answer");
        tmux.keys(&[answer, "Enter"]);
        until(Duration::from_secs(10), "purge exits", || exit_code(&exit_file).is_some());
        assert_eq!(exit_code(&exit_file), Some(code), "answer {answer}");
        assert_eq!(pending(), left, "answer {answer}");
    }
}

fn exit_code(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok())
}
