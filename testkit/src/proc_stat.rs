//! CPU time of processes, as `/proc/<pid>/stat` tells it (user plus system): one reader for
//! the benchmark tool, which times the processes it started, and the archive's cost examples,
//! which split a run's CPU between every process at work.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// The CPU time the process has used so far; zero once it is gone.
pub fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    parse(&stat).map_or(Duration::ZERO, |(_, cpu)| cpu)
}

/// The CPU time every live process has used so far, summed by command name.
pub fn cpu_by_name() -> HashMap<String, Duration> {
    let mut out: HashMap<String, Duration> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((name, cpu)) = parse(&stat) else {
            continue;
        };
        *out.entry(name.to_owned()).or_default() += cpu;
    }
    out
}

/// The command name and CPU time of a stat line. The name is in parentheses and may hold
/// spaces or parentheses itself, so the fields are counted from the last ')': state is field
/// 0 after it, utime 11, stime 12 (fields 14 and 15 of the whole line), in clock ticks.
fn parse(stat: &str) -> Option<(&str, Duration)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let total = ticks(11)? + ticks(12)?;
    Some((
        stat.get(open + 1..close)?,
        Duration::from_secs_f64(total as f64 / clock_ticks_per_second()),
    ))
}

fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_spaces_and_parentheses_is_read_whole() {
        let line = "42 (tokio (rt) 1) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1 0 0";
        let (name, cpu) = parse(line).unwrap();
        assert_eq!(name, "tokio (rt) 1");
        assert_eq!(cpu, Duration::from_secs_f64(300.0 / clock_ticks_per_second()));
        assert_eq!(parse("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(cpu_of(std::process::id()) > Duration::ZERO);
        assert!(cpu_by_name().values().any(|cpu| *cpu > Duration::ZERO));
    }
}
