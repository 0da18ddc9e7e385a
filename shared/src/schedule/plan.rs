//! Which occurrences a beat fires now, given the schedule's cursor (every occurrence at or
//! before it is decided: fired or skipped) and the misfire grace.
//!
//! - An occurrence no older than the grace is on time: it fires (a beat that woke a little
//!   late, or took over from one that died, fires every on-time occurrence, so a 1 s schedule
//!   has no gaps).
//! - Older ones were missed (no beat ran, or the queue refused them). `skip` drops them;
//!   `once` fires only the most recent of them, and only when nothing fires on time. Never a
//!   burst: at most the on-time occurrences, or one catch-up.

use super::{Misfire, Timing};

/// Most occurrences fired for one schedule in one tick (a bound on the on-time window).
pub const MAX_FIRES_PER_TICK: usize = 64;

/// What a beat does with one schedule now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Occurrences (ms) to fire, oldest first.
    pub fire: Vec<i64>,
    /// The new cursor once they are fired: the latest occurrence at or before now; `None` when
    /// nothing fell due since the cursor.
    pub cursor: Option<i64>,
}

/// Plans one schedule at `now` from its `cursor`.
pub fn plan(timing: &Timing, misfire: Misfire, cursor: i64, now: i64, grace_ms: i64) -> Plan {
    let Some(latest) = timing.latest_at_or_before(now).filter(|l| *l > cursor) else {
        return Plan::default();
    };
    // On time: after the cursor and no older than the grace.
    let on_time_from = (now - grace_ms).max(cursor + 1);
    let mut fire = Vec::new();
    let mut next = timing.next_after(on_time_from - 1);
    while let Some(at) = next.filter(|at| *at <= now) {
        fire.push(at);
        if fire.len() == MAX_FIRES_PER_TICK {
            break;
        }
        next = timing.next_after(at);
    }
    if fire.is_empty() && misfire == Misfire::Once {
        fire.push(latest);
    }
    Plan {
        fire,
        cursor: Some(latest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const H: i64 = 3600 * S;
    const GRACE: i64 = 5 * S;

    fn every(ms: i64) -> Timing {
        Timing::Every { ms }
    }

    #[test]
    fn nothing_is_due_before_the_next_occurrence() {
        let t = every(H);
        assert_eq!(plan(&t, Misfire::Once, 10 * H, 10 * H + 59 * 60 * S, GRACE), Plan::default());
        assert_eq!(plan(&t, Misfire::Once, 10 * H, 10 * H, GRACE), Plan::default());
    }

    #[test]
    fn an_occurrence_fires_when_due_and_a_little_late() {
        let t = every(H);
        for late in [0, 10, 4 * S, GRACE] {
            let p = plan(&t, Misfire::Skip, 10 * H, 11 * H + late, GRACE);
            assert_eq!(p.fire, [11 * H], "late by {late} ms");
            assert_eq!(p.cursor, Some(11 * H));
        }
    }

    #[test]
    fn a_late_tick_fires_every_on_time_occurrence_without_gaps() {
        let t = every(S);
        let p = plan(&t, Misfire::Skip, 100 * S, 103 * S + 400, GRACE);
        assert_eq!(p.fire, [101 * S, 102 * S, 103 * S]);
        assert_eq!(p.cursor, Some(103 * S));
    }

    #[test]
    fn after_downtime_skip_drops_the_missed_occurrences() {
        let t = every(H);
        let p = plan(&t, Misfire::Skip, 10 * H, 15 * H + 30 * 60 * S, GRACE);
        assert!(p.fire.is_empty());
        assert_eq!(p.cursor, Some(15 * H), "the missed ones are decided: never fired later");
    }

    #[test]
    fn after_downtime_once_fires_only_the_latest_missed_occurrence() {
        let t = every(H);
        let p = plan(&t, Misfire::Once, 10 * H, 15 * H + 30 * 60 * S, GRACE);
        assert_eq!(p.fire, [15 * H]);
        assert_eq!(p.cursor, Some(15 * H));
        // And nothing more at the next tick.
        assert!(plan(&t, Misfire::Once, 15 * H, 15 * H + 31 * 60 * S, GRACE).fire.is_empty());
    }

    #[test]
    fn when_an_occurrence_is_on_time_no_extra_catch_up_runs() {
        // Down for 10 s on a 1 s schedule: those no older than 5 s are on time, the rest missed.
        let t = every(S);
        for misfire in [Misfire::Once, Misfire::Skip] {
            let p = plan(&t, misfire, 100 * S, 110 * S, GRACE);
            assert_eq!(p.fire, [105 * S, 106 * S, 107 * S, 108 * S, 109 * S, 110 * S], "{misfire:?}");
        }
    }

    #[test]
    fn a_week_of_downtime_on_a_one_second_schedule_is_one_run_not_a_burst() {
        let t = every(S);
        let p = plan(&t, Misfire::Once, 0, 7 * 24 * H, 0);
        assert_eq!(p.fire, [7 * 24 * H]);
        let p = plan(&t, Misfire::Once, 0, 7 * 24 * H, 3600 * H);
        assert_eq!(p.fire.len(), MAX_FIRES_PER_TICK, "an absurd grace is still bounded");
    }
}
