//! The PDF form of a report: a title block (user, generation time, period) and a table of the
//! monthly rows with a total, on as many A4 pages as the rows need.

use chrono::{DateTime, Utc};

use super::data::{ActivityRow, dollars};
use super::pdf::{self, Font, PAGE_HEIGHT, PAGE_WIDTH, Page};

const MARGIN: f32 = 50.0;
const ROW_HEIGHT: f32 = 16.0;
const TABLE_SIZE: f32 = 10.0;
/// Rows below the table header before a new page starts.
const ROWS_PER_PAGE: usize = 36;
/// Column titles and the x at which each column's text ends (the first is left-aligned).
const COLUMNS: [(&str, f32); 5] = [
    ("Month", MARGIN),
    ("E-mails sent", 250.0),
    ("Reports", 330.0),
    ("API calls", 440.0),
    ("Cost (USD)", PAGE_WIDTH - MARGIN),
];

/// The report for `user_id` as a PDF file.
pub fn render(user_id: &str, generated: DateTime<Utc>, rows: &[ActivityRow]) -> Vec<u8> {
    let title = format!("Activity report for user {user_id}");
    let chunks: Vec<&[ActivityRow]> = if rows.is_empty() {
        vec![&[]]
    } else {
        rows.chunks(ROWS_PER_PAGE).collect()
    };
    let page_count = chunks.len();
    let mut pages = Vec::with_capacity(page_count);
    for (index, chunk) in chunks.into_iter().enumerate() {
        let mut page = Page::default();
        let mut y = header(&mut page, &title, user_id, generated, rows);
        for row in chunk {
            let values = [
                row.emails_sent.to_string(),
                row.reports_generated.to_string(),
                row.api_calls.to_string(),
                dollars(row.cost_cents),
            ];
            table_line(&mut page, Font::Helvetica, y, &row.month.to_string(), &values);
            y -= ROW_HEIGHT;
        }
        if index + 1 == page_count {
            totals(&mut page, y, rows);
        }
        let footer = format!(
            "Page {} of {page_count}. Sample figures derived from the user id (Celeriac has no application database).",
            index + 1
        );
        page.text(Font::Helvetica, 8.0, MARGIN, MARGIN - 20.0, &footer);
        pages.push(page);
    }
    pdf::document(&title, &pages)
}

/// Draws the title block and the table header; returns the baseline of the first row.
fn header(page: &mut Page, title: &str, user_id: &str, generated: DateTime<Utc>, rows: &[ActivityRow]) -> f32 {
    let mut y = PAGE_HEIGHT - MARGIN - 20.0;
    page.text(Font::HelveticaBold, 18.0, MARGIN, y, title);
    y -= 28.0;
    let period = match (rows.first(), rows.last()) {
        (Some(first), Some(last)) => format!("{} to {}", first.month, last.month),
        _ => "no data".to_owned(),
    };
    for line in [
        format!("User: {user_id}"),
        format!("Generated: {} UTC", generated.format("%Y-%m-%d %H:%M")),
        format!("Period: {period}"),
    ] {
        page.text(Font::Helvetica, 11.0, MARGIN, y, &line);
        y -= 15.0;
    }
    y -= 15.0;
    let titles = COLUMNS.map(|(title, _)| title.to_owned());
    table_line(page, Font::Helvetica, y, &titles[0], &titles[1..]);
    page.rule(MARGIN, PAGE_WIDTH - MARGIN, y - 5.0);
    y - ROW_HEIGHT - 2.0
}

fn totals(page: &mut Page, y: f32, rows: &[ActivityRow]) {
    let sum = |field: fn(&ActivityRow) -> u64| rows.iter().map(field).sum::<u64>();
    page.rule(MARGIN, PAGE_WIDTH - MARGIN, y + ROW_HEIGHT - 5.0);
    let values = [
        sum(|r| r.emails_sent).to_string(),
        sum(|r| r.reports_generated).to_string(),
        sum(|r| r.api_calls).to_string(),
        dollars(sum(|r| r.cost_cents)),
    ];
    table_line(page, Font::HelveticaBold, y - 2.0, "Total", &values);
}

/// A label in the first column and right-aligned values in the others. Digits are as wide
/// in Helvetica-Bold as in Helvetica, so the regular widths align bold numbers too.
fn table_line(page: &mut Page, label_font: Font, y: f32, label: &str, values: &[String]) {
    page.text(label_font, TABLE_SIZE, COLUMNS[0].1, y, label);
    for ((_, right), value) in COLUMNS[1..].iter().zip(values) {
        match label_font {
            Font::Helvetica => page.text_right(TABLE_SIZE, *right, y, value),
            Font::HelveticaBold => page.text(label_font, TABLE_SIZE, right - pdf::text_width(value, TABLE_SIZE), y, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::{Month, activity};
    use super::*;

    #[test]
    fn long_tables_continue_on_more_pages() {
        let first = Month::of(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        let months = std::iter::successors(Some(first), |m| Some(m.previous())).take(ROWS_PER_PAGE * 2 + 1);
        let rows: Vec<ActivityRow> = months.map(|m| activity("many", m)).collect();
        let pdf = render("many", Utc::now(), &rows);
        pdf::tests::assert_well_formed(&pdf);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 3") && text.contains("(Page 3 of 3."));
        assert_eq!(text.matches("(Total) Tj").count(), 1);
    }
}
