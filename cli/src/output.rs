//! Printing: aligned text tables for people, the gateway's JSON for scripts (`--json`), and
//! the short forms of times and values the tables use.

use serde_json::Value;

/// Prints `value` as pretty JSON on stdout.
pub fn json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values serialize"));
}

/// A text table: a header row and rows, columns padded to their widest cell.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: Vec<&'static str>) -> Self {
        Self { header, rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    /// The table as lines, without trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            padded.join("  ").trim_end().to_owned()
        };
        let mut out = vec![line(&mut self.header.iter().copied())];
        out.extend(self.rows.iter().map(|row| line(&mut row.iter().map(String::as_str))));
        out.join("\n")
    }

    /// Prints the table, or `empty` when it has no rows.
    pub fn print_or(&self, empty: &str) {
        if self.rows.is_empty() {
            println!("{empty}");
        } else {
            println!("{}", self.render());
        }
    }
}

/// An RFC 3339 time from the gateway, shortened to `YYYY-MM-DD HH:MM:SS` (UTC); `-` for none.
pub fn time(value: Option<&str>) -> String {
    match value {
        None => "-".into(),
        Some(t) if t.len() >= 19 => format!("{} {}", &t[..10], &t[11..19]),
        Some(t) => t.to_owned(),
    }
}

/// A JSON value on one line, cut to `max` characters.
pub fn compact(value: &Value, max: usize) -> String {
    let text = value.to_string();
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A duration in seconds, in its largest sensible unit (`4.2s`, `3m`, `2h`).
pub fn age(secs: Option<f64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 60.0 => format!("{s:.1}s"),
        Some(s) if s < 3600.0 => format!("{}m", (s / 60.0) as u64),
        Some(s) => format!("{}h", (s / 3600.0) as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pads_every_column_to_its_widest_cell() {
        let mut table = Table::new(vec!["NAME", "N"]);
        table.row(vec!["default".into(), "12".into()]);
        table.row(vec!["q".into(), "3".into()]);
        assert_eq!(table.render(), "NAME     N\ndefault  12\nq        3");
    }

    #[test]
    fn times_are_shortened_and_values_cut() {
        assert_eq!(time(Some("2026-12-03T12:00:01.123Z")), "2026-12-03 12:00:01");
        assert_eq!(time(None), "-");
        assert_eq!(compact(&serde_json::json!({"a": 1}), 20), r#"{"a":1}"#);
        assert_eq!(compact(&serde_json::json!("abcdefgh"), 5), "\"abc…");
        assert_eq!(age(Some(75.0)), "1m");
        assert_eq!(age(Some(2.26)), "2.3s");
    }
}
