//! The numbers in a report, and their CSV form.
//!
//! They come from the archive (crate `celeriac-archive`, see [`activity_rows`]): a user's
//! real tasks, tagged with their id, over the report's months. Without an archive there is no
//! history to count, and the report says so ([`NO_HISTORY`]) rather than show figures.

use std::fmt;

use celeriac_archive::activity::MonthActivity;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// How many months a report covers.
pub const MONTHS: usize = 12;

/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 4] = ["month", "emails_sent", "reports_generated", "failures"];

/// What a report says in place of figures when no history is kept.
pub const NO_HISTORY: &str =
    "No history is kept: this Celeriac runs without an archive ([archive] database_url is not set), so there are no figures to report.";

/// A calendar month, shown as `2025-03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    /// 1 to 12.
    month: u32,
}

impl Month {
    pub fn of(date: NaiveDate) -> Self {
        Self {
            year: date.year(),
            month: date.month(),
        }
    }

    /// Midnight UTC on the month's first day.
    pub fn start(self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .expect("the first of a month exists")
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        match self.month {
            12 => Self {
                year: self.year + 1,
                month: 1,
            },
            m => Self {
                year: self.year,
                month: m + 1,
            },
        }
    }

    pub fn previous(self) -> Self {
        match self.month {
            1 => Self {
                year: self.year - 1,
                month: 12,
            },
            m => Self {
                year: self.year,
                month: m - 1,
            },
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One month of a user's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityRow {
    pub month: Month,
    pub emails_sent: u64,
    pub reports_generated: u64,
    pub failures: u64,
}

/// The [`MONTHS`] months up to the one `today` is in, oldest first: the last is the month so
/// far, so a report shows what its user did today too.
pub fn report_months(today: NaiveDate) -> Vec<Month> {
    let mut months: Vec<Month> = std::iter::successors(Some(Month::of(today)), |m| Some(m.previous()))
        .take(MONTHS)
        .collect();
    months.reverse();
    months
}

/// One row per month of `months` (consecutive, oldest first) from the archive's counts, a
/// month the archive has nothing for showing zeros.
pub fn activity_rows(months: &[Month], counts: &[MonthActivity]) -> Vec<ActivityRow> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    months
        .iter()
        .map(|&month| {
            let label = month.to_string();
            let found = counts.iter().find(|c| c.month == label);
            ActivityRow {
                month,
                emails_sent: found.map_or(0, |c| count(c.emails_sent)),
                reports_generated: found.map_or(0, |c| count(c.reports_generated)),
                failures: found.map_or(0, |c| count(c.failures)),
            }
        })
        .collect()
}

/// The report as CSV (RFC 4180): a header line, one line per row, CRLF line ends.
pub fn to_csv(rows: &[ActivityRow]) -> Vec<u8> {
    let lines = rows.iter().map(|row| {
        [
            row.month.to_string(),
            row.emails_sent.to_string(),
            row.reports_generated.to_string(),
            row.failures.to_string(),
        ]
    });
    csv_lines(std::iter::once(CSV_HEADER.map(String::from)).chain(lines))
}

/// The CSV of a report without history: one column, `note`, saying so.
pub fn no_history_csv() -> Vec<u8> {
    csv_lines([["note".to_owned()], [NO_HISTORY.to_owned()]])
}

/// Records as CSV lines ending in CRLF; the `csv` crate quotes a field only when it holds a
/// comma, a quote or a line break, and doubles its quotes.
fn csv_lines<R: IntoIterator<Item = String>>(records: impl IntoIterator<Item = R>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    for record in records {
        // Writing to a Vec cannot fail, and every record has as many fields as the header.
        writer.write_record(record).expect("a CSV record into memory");
    }
    writer.into_inner().expect("a CSV flush into memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn twelve_months_up_to_todays() {
        let months: Vec<String> = report_months(date(2026, 3, 15)).iter().map(Month::to_string).collect();
        assert_eq!(months.len(), MONTHS);
        assert_eq!((months[0].as_str(), months[11].as_str()), ("2025-04", "2026-03"));
        assert_eq!(report_months(date(2026, 1, 1))[0].to_string(), "2025-02");
        assert_eq!(report_months(date(2026, 1, 1))[11].to_string(), "2026-01");
    }

    #[test]
    fn rows_take_the_archive_counts_and_zero_elsewhere() {
        let months = report_months(date(2026, 3, 15));
        let counts = [MonthActivity {
            month: "2025-05".into(),
            emails_sent: 3,
            reports_generated: 1,
            failures: 2,
        }];
        let rows = activity_rows(&months, &counts);
        assert_eq!(rows.len(), MONTHS);
        assert_eq!((rows[1].emails_sent, rows[1].reports_generated, rows[1].failures), (3, 1, 2));
        assert!(
            rows.iter()
                .enumerate()
                .all(|(i, r)| i == 1 || (r.emails_sent, r.reports_generated, r.failures) == (0, 0, 0))
        );
        assert_eq!(months[11].next().start(), Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap());
        assert_eq!(Month::of(date(2025, 12, 9)).next().to_string(), "2026-01");
    }

    #[test]
    fn csv_has_a_header_and_a_line_per_row() {
        let rows = activity_rows(&report_months(date(2026, 3, 15)), &[]);
        let csv = String::from_utf8(to_csv(&rows)).unwrap();
        let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 1 + MONTHS);
        assert_eq!(lines[0], "month,emails_sent,reports_generated,failures");
        assert!(lines[1].starts_with("2025-04,"), "{}", lines[1]);
        assert_eq!(csv.as_bytes(), to_csv(&rows));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let line = |field: &str| String::from_utf8(csv_lines([[field.to_owned()]])).unwrap();
        assert_eq!(line("plain"), "plain\r\n");
        assert_eq!(line("a,b"), "\"a,b\"\r\n");
        assert_eq!(line("say \"hi\""), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(line("two\nlines"), "\"two\nlines\"\r\n");
    }
}
