//! Proof that another worker process is dead, so its tasks can run again at once instead of
//! after its lease (a restarted worker loses no time, as Sidekiq Pro's super_fetch).
//!
//! A worker publishes, in its registry entry, its host id and its process's start time. The
//! host id names one PID namespace on one boot of one machine (hostname, kernel boot id, PID
//! namespace inode), so two workers with the same host id see the same process table: when
//! the other's pid is gone, or now belongs to a process that started at another time (the
//! pid was reused), that worker is dead, for sure. A worker on another host id is never
//! judged here: its lease stays the only proof (a host that vanished, a network split).

use celeriac::broker::WorkerInfo;

/// This process's host id, or `None` where the process table cannot be read (not Linux):
/// then no worker is ever proven dead by this one, and leases decide alone.
pub fn host_id() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let pid_ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}/{}", hostname(), boot.trim(), pid_ns.to_string_lossy()))
}

/// This machine's name (`HOSTNAME`, else the kernel's): part of its host id, of each worker's
/// id, and the host a worker publishes.
pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// When process `pid` started (clock ticks after boot, field 22 of `/proc/<pid>/stat`), or
/// `None` when there is no such process.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `other` is certainly dead, judged by a process on host id `mine`: same host id,
/// and its process is gone or its pid now names another process. An entry without a host
/// id or start time (an earlier build) is never proven dead.
pub fn proven_dead(other: &WorkerInfo, mine: Option<&str>) -> bool {
    let (Some(mine), Some(theirs), Some(started)) = (mine, other.host_id.as_deref(), other.process_start) else {
        return false;
    };
    mine == theirs && process_start(other.pid) != Some(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(host_id: Option<String>, pid: u32, process_start: Option<u64>) -> WorkerInfo {
        WorkerInfo {
            id: "w".into(),
            host: "h".into(),
            pid,
            host_id,
            process_start,
            queues: vec![],
            concurrency: 1,
            running: 0,
            processed: 0,
            failed: 0,
            started_at: chrono::Utc::now(),
            last_heartbeat: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_live_process_on_this_host_is_alive_and_a_gone_or_reused_pid_is_dead() {
        let mine = host_id().expect("Linux");
        let me = std::process::id();
        let started = process_start(me).expect("own start time");
        assert!(!proven_dead(&info(Some(mine.clone()), me, Some(started)), Some(&mine)));
        // The same pid with another start time: the pid was reused by a new process.
        assert!(proven_dead(&info(Some(mine.clone()), me, Some(started + 1)), Some(&mine)));
        // A pid above the kernel's maximum names no process.
        assert!(proven_dead(&info(Some(mine.clone()), u32::MAX - 1, Some(1)), Some(&mine)));
    }

    #[test]
    fn another_host_or_an_entry_without_identity_is_never_proven_dead() {
        let mine = host_id().expect("Linux");
        assert!(!proven_dead(
            &info(Some("elsewhere/boot/pid:[1]".into()), u32::MAX - 1, Some(1)),
            Some(&mine)
        ));
        assert!(!proven_dead(&info(None, u32::MAX - 1, Some(1)), Some(&mine)));
        assert!(!proven_dead(&info(Some(mine.clone()), u32::MAX - 1, None), Some(&mine)));
        assert!(!proven_dead(&info(Some(mine.clone()), u32::MAX - 1, Some(1)), None));
    }
}
