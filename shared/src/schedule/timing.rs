//! When a schedule's occurrences fall: an interval (`every = "30s"`) aligned to the Unix epoch,
//! or a cron expression (5 fields, or 6 with seconds first) read on the wall clock of an IANA
//! time zone. Pure functions of time in ms, so every beat process computes the same instants.
//!
//! Daylight saving (croner's rules, pinned by the tests below):
//! - a fixed-time job (single second, minute and hour, e.g. `30 2 * * *`) whose time falls in
//!   a spring-forward gap runs once, at the first valid instant after the gap (03:00 for a
//!   02:30 job in New York); on a fall-back day it runs once, at the first of the repeated
//!   times (01:30 EDT, not again at 01:30 EST);
//! - an interval-like cron job (`*/15 * * * *`) follows real elapsed time: it runs in both
//!   passes of a repeated hour and never in a skipped one.
//!
//! Intervals ignore time zones: `every = "1d"` fires at 00:00 UTC. Use cron for local times.

use std::str::FromStr;

use chrono::TimeZone;
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Shortest interval accepted.
pub const MIN_EVERY_MS: i64 = 1_000;
/// Longest interval accepted: a leap year.
pub const MAX_EVERY_MS: i64 = 366 * 86_400_000;

/// The instants a schedule fires at.
#[derive(Debug, Clone)]
pub enum Timing {
    /// Every `ms` milliseconds, at the multiples of `ms` since the Unix epoch.
    Every { ms: i64 },
    /// A cron expression evaluated on the wall clock of `zone`.
    Cron { cron: Box<Cron>, zone: Tz },
}

impl Timing {
    /// The first occurrence strictly after `ms`.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        match self {
            Self::Every { ms: every } => Some((ms.div_euclid(*every) + 1) * every),
            Self::Cron { cron, zone } => {
                // Occurrences are whole seconds: "after ms" is "after the second ms is in".
                let start = zone.timestamp_opt(ms.div_euclid(1000), 0).single()?;
                cron.find_next_occurrence(&start, false).ok().map(|t| t.timestamp_millis())
            }
        }
    }

    /// The last occurrence at or before `ms`.
    pub fn latest_at_or_before(&self, ms: i64) -> Option<i64> {
        match self {
            Self::Every { ms: every } => Some(ms.div_euclid(*every) * every),
            Self::Cron { cron, zone } => {
                let start = zone.timestamp_opt(ms.div_euclid(1000), 0).single()?;
                cron.find_previous_occurrence(&start, true).ok().map(|t| t.timestamp_millis())
            }
        }
    }
}

/// Parses an interval with `humantime`: one or more `<number><unit>` parts (`"30s"`, `"5m"`,
/// `"1h30m"`, `"1d"`; also `"1h 30m"`, `"1.5h"`, `"500ms"` and the long unit names), in whole
/// milliseconds from 1 second to 366 days.
pub fn parse_every(text: &str) -> Result<i64, String> {
    let interval = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not an interval ({e}): write e.g. \"30s\", \"5m\", \"1h30m\" or \"1d\""))?;
    if interval.subsec_nanos() % 1_000_000 != 0 {
        return Err(format!("{text:?} must be a whole number of milliseconds"));
    }
    match i64::try_from(interval.as_millis()) {
        Ok(ms) if (MIN_EVERY_MS..=MAX_EVERY_MS).contains(&ms) => Ok(ms),
        _ => Err(format!("{text:?} must be from 1s to 366d")),
    }
}

/// Parses a cron expression of 5 fields (minute first) or 6 (second first).
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if !text.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!(
            "{text:?} has {fields} fields: write 5 (minute hour day-of-month month day-of-week) or 6 (with seconds first)"
        ));
    }
    let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
    parser
        .parse(text)
        .map_err(|e| format!("{text:?} is not a valid cron expression: {e}"))
}

/// Parses an IANA time zone name such as `Europe/Paris` or `UTC`.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| format!("{name:?} is not an IANA time zone name such as \"Europe/Paris\" or \"UTC\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn cron(expr: &str, zone: &str) -> Timing {
        Timing::Cron {
            cron: Box::new(parse_cron(expr).unwrap()),
            zone: parse_zone(zone).unwrap(),
        }
    }

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
    }

    fn show(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms).unwrap().to_rfc3339()
    }

    /// Every occurrence in `[from, to)`, walking forward.
    fn occurrences(timing: &Timing, from: &str, to: &str) -> Vec<String> {
        let (mut at, end) = (ms(from) - 1, ms(to));
        let mut out = Vec::new();
        while let Some(next) = timing.next_after(at).filter(|n| *n < end) {
            out.push(show(next));
            at = next;
        }
        out
    }

    #[test]
    fn intervals_parse_and_reject_nonsense() {
        assert_eq!(parse_every("30s"), Ok(30_000));
        assert_eq!(parse_every("5m"), Ok(300_000));
        assert_eq!(parse_every("1h30m"), Ok(5_400_000));
        assert_eq!(parse_every("1d"), Ok(86_400_000));
        // What humantime adds: spaces between parts, fractions, milliseconds, long unit names.
        assert_eq!(parse_every("1h 30m"), Ok(5_400_000));
        assert_eq!(parse_every("1.5h"), Ok(5_400_000));
        assert_eq!(parse_every("1500ms"), Ok(1_500));
        assert_eq!(parse_every("2 minutes"), Ok(120_000));
        for bad in ["", "30", "s", "5x", "-1s", "0s", "0.5s", "1.0001s", "367d", "99999999999999999999s"] {
            assert!(parse_every(bad).is_err(), "{bad:?}");
        }
        let message = parse_every("soon").unwrap_err();
        assert!(
            message.starts_with("\"soon\" is not an interval") && message.contains("\"30s\""),
            "{message}"
        );
        assert_eq!(parse_every("367d").unwrap_err(), "\"367d\" must be from 1s to 366d");
    }

    #[test]
    fn intervals_are_aligned_to_the_epoch() {
        let every = Timing::Every { ms: 30_000 };
        assert_eq!(every.next_after(ms("2025-01-01T00:00:00Z")), Some(ms("2025-01-01T00:00:30Z")));
        assert_eq!(every.next_after(ms("2025-01-01T00:00:29.999Z")), Some(ms("2025-01-01T00:00:30Z")));
        assert_eq!(
            every.latest_at_or_before(ms("2025-01-01T00:00:59.999Z")),
            Some(ms("2025-01-01T00:00:30Z"))
        );
        assert_eq!(
            every.latest_at_or_before(ms("2025-01-01T00:00:30Z")),
            Some(ms("2025-01-01T00:00:30Z"))
        );
    }

    #[test]
    fn cron_takes_five_or_six_fields_and_says_what_is_wrong() {
        assert!(parse_cron("30 2 * * *").is_ok());
        assert!(parse_cron("*/5 30 2 * * *").is_ok());
        assert!(parse_cron("@daily").is_ok());
        for bad in ["", "* * * *", "0 0 0 1 1 * 2030", "61 * * * *", "* 25 * * *", "not cron at all"] {
            let e = parse_cron(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(parse_zone("Europe/Paris").is_ok());
        assert!(parse_zone("UTC").is_ok());
        assert!(parse_zone("Mars/Olympus_Mons").is_err());
    }

    #[test]
    fn seconds_field_fires_every_few_seconds() {
        let t = cron("*/20 * * * * *", "UTC");
        assert_eq!(
            occurrences(&t, "2025-01-01T00:00:01Z", "2025-01-01T00:01:01Z"),
            [
                "2025-01-01T00:00:20+00:00",
                "2025-01-01T00:00:40+00:00",
                "2025-01-01T00:01:00+00:00"
            ]
        );
    }

    #[test]
    fn a_daily_job_in_the_spring_forward_gap_runs_once_at_the_first_instant_after_it() {
        // New York, 2025-03-09: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist.
        let t = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            occurrences(&t, "2025-03-08T00:00:00Z", "2025-03-11T00:00:00Z"),
            [
                "2025-03-08T07:30:00+00:00", // 02:30 EST
                "2025-03-09T07:00:00+00:00", // 03:00 EDT, the first valid instant after the gap
                "2025-03-10T06:30:00+00:00", // 02:30 EDT
            ]
        );
        // The backward search agrees (the beat uses it to find the occurrence a catch-up runs).
        assert_eq!(t.latest_at_or_before(ms("2025-03-09T12:00:00Z")), Some(ms("2025-03-09T07:00:00Z")));
        assert_eq!(t.latest_at_or_before(ms("2025-03-09T06:59:59Z")), Some(ms("2025-03-08T07:30:00Z")));
    }

    #[test]
    fn a_daily_job_in_the_repeated_hour_runs_once_at_the_first_pass() {
        // New York, 2025-11-02: 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice.
        let t = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            occurrences(&t, "2025-11-01T00:00:00Z", "2025-11-04T00:00:00Z"),
            [
                "2025-11-01T05:30:00+00:00", // 01:30 EDT
                "2025-11-02T05:30:00+00:00", // 01:30 EDT, the first pass; not again at 06:30Z
                "2025-11-03T06:30:00+00:00", // 01:30 EST
            ]
        );
        assert_eq!(t.latest_at_or_before(ms("2025-11-02T06:45:00Z")), Some(ms("2025-11-02T05:30:00Z")));
        assert_eq!(t.latest_at_or_before(ms("2025-11-02T12:00:00Z")), Some(ms("2025-11-02T05:30:00Z")));
    }

    #[test]
    fn the_same_holds_with_a_seconds_field_and_in_europe() {
        // Paris, 2025-03-30: 02:00 CET jumps to 03:00 CEST; 2025-10-26: 03:00 CEST back to 02:00 CET.
        let t = cron("15 30 2 * * *", "Europe/Paris");
        assert_eq!(
            occurrences(&t, "2025-03-29T12:00:00Z", "2025-03-31T12:00:00Z"),
            ["2025-03-30T01:00:00+00:00", "2025-03-31T00:30:15+00:00"],
            "one run on the gap day, at 03:00 CEST"
        );
        assert_eq!(
            occurrences(&t, "2025-10-25T12:00:00Z", "2025-10-27T12:00:00Z"),
            ["2025-10-26T00:30:15+00:00", "2025-10-27T01:30:15+00:00"],
            "one run on the repeat day, at the first 02:30:15 (CEST)"
        );
    }

    #[test]
    fn interval_like_cron_jobs_follow_elapsed_time_through_both_changes() {
        let t = cron("*/30 * * * *", "America/New_York");
        assert_eq!(
            occurrences(&t, "2025-11-02T04:30:00Z", "2025-11-02T07:30:00Z"),
            [
                "2025-11-02T04:30:00+00:00", // 00:30 EDT
                "2025-11-02T05:00:00+00:00", // 01:00 EDT
                "2025-11-02T05:30:00+00:00", // 01:30 EDT
                "2025-11-02T06:00:00+00:00", // 01:00 EST
                "2025-11-02T06:30:00+00:00", // 01:30 EST
                "2025-11-02T07:00:00+00:00", // 02:00 EST
            ]
        );
        assert_eq!(
            occurrences(&t, "2025-03-09T06:00:00Z", "2025-03-09T07:31:00Z"),
            [
                "2025-03-09T06:00:00+00:00", // 01:00 EST
                "2025-03-09T06:30:00+00:00", // 01:30 EST
                "2025-03-09T07:00:00+00:00", // 03:00 EDT: the skipped hour has no runs
                "2025-03-09T07:30:00+00:00", // 03:30 EDT
            ]
        );
    }

    #[test]
    fn end_of_month_days() {
        // Day 31 exists only in some months; cron skips the others (as Vixie cron does).
        let t = cron("0 12 31 * *", "UTC");
        assert_eq!(
            occurrences(&t, "2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"),
            [
                "2025-01-31T12:00:00+00:00",
                "2025-03-31T12:00:00+00:00",
                "2025-05-31T12:00:00+00:00"
            ]
        );
        // `L` is the last day of every month, leap years included.
        let t = cron("0 12 L * *", "UTC");
        assert_eq!(
            occurrences(&t, "2024-01-15T00:00:00Z", "2024-05-01T00:00:00Z"),
            [
                "2024-01-31T12:00:00+00:00",
                "2024-02-29T12:00:00+00:00",
                "2024-03-31T12:00:00+00:00",
                "2024-04-30T12:00:00+00:00"
            ]
        );
        assert_eq!(
            occurrences(&t, "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"),
            ["2025-02-28T12:00:00+00:00"]
        );
        assert_eq!(t.latest_at_or_before(ms("2025-03-15T00:00:00Z")), Some(ms("2025-02-28T12:00:00Z")));
        // The 30th, in a zone: February has none, and local midnight is the previous UTC day.
        let t = cron("0 0 30 * *", "Asia/Tokyo");
        assert_eq!(
            occurrences(&t, "2025-01-01T00:00:00Z", "2025-04-01T00:00:00Z"),
            ["2025-01-29T15:00:00+00:00", "2025-03-29T15:00:00+00:00"]
        );
    }
}
