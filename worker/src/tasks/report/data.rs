//! The numbers in a report, and their CSV form.
//!
//! There is no application database in Celeriac, so this generator stands in for the
//! application's own data: a user's activity in a month (e-mails sent, reports generated, API
//! calls and their cost) is a pure function of the user id and the month. The same user gets
//! the same row for the same month on every run and every machine, which also makes the
//! output testable. A real deployment replaces [`activity`] with a query.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// How many months a report covers.
pub const MONTHS: usize = 12;

/// The CSV header, in column order.
pub const CSV_HEADER: [&str; 5] = ["month", "emails_sent", "reports_generated", "api_calls", "cost_usd"];

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
    pub api_calls: u64,
    /// In US cents, so sums are exact.
    pub cost_cents: u64,
}

/// The [`MONTHS`] complete months before the one `today` is in, oldest first.
pub fn report_months(today: NaiveDate) -> Vec<Month> {
    let mut months: Vec<Month> = std::iter::successors(Some(Month::of(today).previous()), |m| Some(m.previous()))
        .take(MONTHS)
        .collect();
    months.reverse();
    months
}

/// The activity of `user_id` in `month`: always the same numbers for the same pair.
pub fn activity(user_id: &str, month: Month) -> ActivityRow {
    // Each user gets a steady profile, and each month a variation around it.
    let mut profile = SplitMix64(fnv1a(user_id.as_bytes()));
    let email_base = 50 + profile.below(1950);
    let report_base = 1 + profile.below(30);
    let api_base = 1_000 + profile.below(49_000);
    let mut this_month = SplitMix64(profile.next() ^ fnv1a(month.to_string().as_bytes()));
    let mut vary = |base: u64| base * (60 + this_month.below(81)) / 100;
    let (emails_sent, reports_generated, api_calls) = (vary(email_base), vary(report_base), vary(api_base));
    // Price list: an e-mail 0.1 cent, a report 5 cents, an API call 0.02 cent.
    let hundredths_of_cents = emails_sent * 10 + reports_generated * 500 + api_calls * 2;
    ActivityRow {
        month,
        emails_sent,
        reports_generated,
        api_calls,
        cost_cents: (hundredths_of_cents + 50) / 100,
    }
}

/// Cents as dollars with two decimals: `1234` is `12.34`.
pub fn dollars(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The report as CSV (RFC 4180): a header line, one line per row, CRLF line ends.
pub fn to_csv(rows: &[ActivityRow]) -> Vec<u8> {
    let lines = rows.iter().map(|row| {
        [
            row.month.to_string(),
            row.emails_sent.to_string(),
            row.reports_generated.to_string(),
            row.api_calls.to_string(),
            dollars(row.cost_cents),
        ]
    });
    csv_lines(std::iter::once(CSV_HEADER.map(String::from)).chain(lines))
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

/// FNV-1a, 64 bits: a hash that, unlike std's, is the same on every Rust version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: a tiny, well-mixed generator whose sequence is fixed by its seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (the modulo bias is irrelevant for sample data).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn twelve_full_months_before_today() {
        let months: Vec<String> = report_months(date(2026, 3, 15)).iter().map(Month::to_string).collect();
        assert_eq!(months.len(), MONTHS);
        assert_eq!((months[0].as_str(), months[11].as_str()), ("2025-03", "2026-02"));
        assert_eq!(report_months(date(2026, 1, 1))[11].to_string(), "2025-12");
    }

    #[test]
    fn activity_depends_on_user_and_month_only() {
        let march = Month::of(date(2025, 3, 1));
        assert_eq!(activity("42", march), activity("42", march));
        assert_ne!(activity("42", march), activity("43", march));
        assert_ne!(activity("42", march), activity("42", march.previous()));
        let row = activity("42", march);
        assert!(row.emails_sent > 0 && row.api_calls > 0 && row.cost_cents > 0);
    }

    #[test]
    fn csv_has_a_header_and_a_line_per_row() {
        let rows: Vec<ActivityRow> = report_months(date(2026, 3, 15)).into_iter().map(|m| activity("ada", m)).collect();
        let csv = String::from_utf8(to_csv(&rows)).unwrap();
        let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 1 + MONTHS);
        assert_eq!(lines[0], "month,emails_sent,reports_generated,api_calls,cost_usd");
        assert!(lines[1].starts_with("2025-03,"), "{}", lines[1]);
        assert_eq!(csv.as_bytes(), to_csv(&rows));
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let line = |field: &str| String::from_utf8(csv_lines([[field.to_owned()]])).unwrap();
        assert_eq!(line("plain"), "plain\r\n");
        assert_eq!(line("a,b"), "\"a,b\"\r\n");
        assert_eq!(line("say \"hi\""), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(line("two\nlines"), "\"two\nlines\"\r\n");
        assert_eq!(dollars(1234), "12.34");
        assert_eq!(dollars(5), "0.05");
    }
}
