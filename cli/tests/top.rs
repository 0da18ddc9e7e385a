//! `celeriac top` in a real terminal: run inside a detached tmux session (its own server
//! socket), the screen read with `capture-pane`, a change on the gateway seen on the next
//! refresh, and `q` typed with `send-keys` ending it with exit code 0.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Stack, TOKEN, until};

/// A tmux server of this test's own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
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
    let tmux = Tmux {
        socket: format!("celeriac-cli-top-{}", std::process::id()),
    };
    let started = tmux.run(&["new-session", "-d", "-s", "top", "-x", "160", "-y", "40", "sh", "-c", &script]);
    assert!(started.status.success(), "tmux new-session: {started:?}");

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

    let sent = tmux.run(&["send-keys", "-t", "top", "q"]);
    assert!(sent.status.success(), "tmux send-keys: {sent:?}");
    until(Duration::from_secs(10), "top exits after q", || exit_code(&exit_file).is_some());
    assert_eq!(exit_code(&exit_file), Some(0), "top's exit code; last screen:\n{screen}");
}

fn exit_code(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok())
}
