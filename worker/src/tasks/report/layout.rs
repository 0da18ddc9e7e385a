//! The PDF form of a report: a title block (user, generation time, period) and a table of the
//! monthly rows with a total, on as many A4 pages as the rows need; or, when no history is
//! kept, the title block and a note saying so ([`render_no_history`]).
//!
//! The table is laid out from its content: each column is as wide as its widest cell (titles
//! and the total in bold, rows in regular, measured with the fonts' widths) plus padding, and
//! the width left over on the line is shared among the columns. The header row is shaded and
//! repeated on every page, rows are striped, and the total closes the last page.

use chrono::{DateTime, Utc};

use super::data::{ActivityRow, NO_HISTORY};
use super::pdf::{self, Font, PAGE_HEIGHT, PAGE_WIDTH, Page};

const MARGIN: f32 = 50.0;
const TABLE_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
const ROW_HEIGHT: f32 = 18.0;
const TABLE_SIZE: f32 = 10.0;
/// Space between a cell's text and its column's edges.
const PADDING: f32 = 6.0;
/// Where the table's header row starts, below the title block.
const TABLE_TOP: f32 = PAGE_HEIGHT - MARGIN - 100.0;
/// The lowest a row may reach, above the footer.
const TABLE_BOTTOM: f32 = MARGIN;
/// Rows below the header row on one page, keeping room for the total row on the last one.
const ROWS_PER_PAGE: usize = ((TABLE_TOP - TABLE_BOTTOM) / ROW_HEIGHT) as usize - 2;

/// Column titles; the first column holds labels (left-aligned), the others numbers
/// (right-aligned).
const TITLES: [&str; 4] = ["Month", "E-mails sent", "Reports", "Failures"];

/// One line of the table: a label and three numbers.
type Cells = [String; 4];

/// The report for `user_id` as a PDF file.
pub fn render(user_id: &str, generated: DateTime<Utc>, rows: &[ActivityRow]) -> Vec<u8> {
    let title = format!("Activity report for user {user_id}");
    let body: Vec<Cells> = rows.iter().map(cells).collect();
    let total = totals(rows);
    let table = Table::fit(&body, &total);

    let chunks: Vec<&[Cells]> = if body.is_empty() {
        vec![&[]]
    } else {
        body.chunks(ROWS_PER_PAGE).collect()
    };
    let page_count = chunks.len();
    let mut pages = Vec::with_capacity(page_count);
    for (index, chunk) in chunks.into_iter().enumerate() {
        let mut page = Page::default();
        title_block(&mut page, &title, user_id, generated, rows);
        let mut top = TABLE_TOP;
        page.shade(MARGIN, top - ROW_HEIGHT, TABLE_WIDTH, ROW_HEIGHT, 0.85);
        table.line(&mut page, Font::HelveticaBold, top, &TITLES.map(String::from));
        top -= ROW_HEIGHT;
        for (i, cells) in chunk.iter().enumerate() {
            if i % 2 == 1 {
                page.shade(MARGIN, top - ROW_HEIGHT, TABLE_WIDTH, ROW_HEIGHT, 0.95);
            }
            table.line(&mut page, Font::Helvetica, top, cells);
            top -= ROW_HEIGHT;
        }
        if index + 1 == page_count {
            page.rule(MARGIN, MARGIN + TABLE_WIDTH, top, 1.0);
            table.line(&mut page, Font::HelveticaBold, top, &total);
            top -= ROW_HEIGHT;
        }
        page.rule(MARGIN, MARGIN + TABLE_WIDTH, top, 0.5);
        let footer = format!(
            "Page {} of {page_count}. Counted from the archive: the user's tasks tagged user_id={user_id}.",
            index + 1
        );
        page.text(Font::Helvetica, 8.0, MARGIN, MARGIN - 20.0, &footer);
        pages.push(page);
    }
    pdf::document(&title, pages)
}

/// The report for `user_id` when no history is kept: the title block and [`NO_HISTORY`].
pub fn render_no_history(user_id: &str, generated: DateTime<Utc>) -> Vec<u8> {
    let title = format!("Activity report for user {user_id}");
    let mut page = Page::default();
    title_block(&mut page, &title, user_id, generated, &[]);
    // The note, wrapped to the line at word boundaries.
    let mut y = TABLE_TOP;
    let mut line = String::new();
    for word in NO_HISTORY.split(' ') {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if Font::Helvetica.width(&candidate, 11.0) > TABLE_WIDTH && !line.is_empty() {
            page.text(Font::Helvetica, 11.0, MARGIN, y, &line);
            y -= 15.0;
            line = word.to_owned();
        } else {
            line = candidate;
        }
    }
    page.text(Font::Helvetica, 11.0, MARGIN, y, &line);
    pdf::document(&title, vec![page])
}

/// The column edges of a table, computed from every cell it will show.
struct Table {
    /// The x at which each column starts, and one more for the right edge of the last.
    edges: [f32; 5],
}

impl Table {
    /// Widths from the content: the widest cell of each column plus padding on both sides; what
    /// is left of [`TABLE_WIDTH`] is shared equally. When the content is wider than the page
    /// (very long labels), the columns shrink in proportion instead.
    fn fit(body: &[Cells], total: &Cells) -> Self {
        let mut widths = TITLES.map(|t| Font::HelveticaBold.width(t, TABLE_SIZE));
        let mut widen = |font: Font, cells: &Cells| {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = width.max(font.width(cell, TABLE_SIZE));
            }
        };
        body.iter().for_each(|cells| widen(Font::Helvetica, cells));
        widen(Font::HelveticaBold, total);
        let natural = widths.map(|w| w + 2.0 * PADDING);
        let sum: f32 = natural.iter().sum();
        let widths = if sum <= TABLE_WIDTH {
            let extra = (TABLE_WIDTH - sum) / natural.len() as f32;
            natural.map(|w| w + extra)
        } else {
            natural.map(|w| w * TABLE_WIDTH / sum)
        };
        let mut edges = [MARGIN; 5];
        for (i, width) in widths.iter().enumerate() {
            edges[i + 1] = edges[i] + width;
        }
        Self { edges }
    }

    /// One row whose box starts at `top`: the label left-aligned in the first column, the
    /// numbers right-aligned in theirs, all on one baseline.
    fn line(&self, page: &mut Page, font: Font, top: f32, cells: &Cells) {
        let baseline = top - ROW_HEIGHT + 5.5;
        for (i, cell) in cells.iter().enumerate() {
            let x = if i == 0 {
                self.edges[0] + PADDING
            } else {
                self.edges[i + 1] - PADDING - font.width(cell, TABLE_SIZE)
            };
            page.text(font, TABLE_SIZE, x, baseline, cell);
        }
    }
}

/// Draws the title, the user, the generation time and the period above the table.
fn title_block(page: &mut Page, title: &str, user_id: &str, generated: DateTime<Utc>, rows: &[ActivityRow]) {
    let mut y = PAGE_HEIGHT - MARGIN - 20.0;
    page.text(Font::HelveticaBold, 18.0, MARGIN, y, title);
    page.rule(MARGIN, MARGIN + TABLE_WIDTH, y - 8.0, 1.0);
    y -= 28.0;
    let period = match (rows.first(), rows.last()) {
        (Some(first), Some(last)) => format!("{} to {}", first.month, last.month),
        _ => "none (no history is kept)".to_owned(),
    };
    for line in [
        format!("User: {user_id}"),
        format!("Generated: {} UTC", generated.format("%Y-%m-%d %H:%M")),
        format!("Period: {period}"),
    ] {
        page.text(Font::Helvetica, 11.0, MARGIN, y, &line);
        y -= 15.0;
    }
}

fn cells(row: &ActivityRow) -> Cells {
    [
        row.month.to_string(),
        row.emails_sent.to_string(),
        row.reports_generated.to_string(),
        row.failures.to_string(),
    ]
}

fn totals(rows: &[ActivityRow]) -> Cells {
    let sum = |field: fn(&ActivityRow) -> u64| rows.iter().map(field).sum::<u64>();
    [
        "Total".to_owned(),
        sum(|r| r.emails_sent).to_string(),
        sum(|r| r.reports_generated).to_string(),
        sum(|r| r.failures).to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::data::{Month, activity_rows};
    use super::*;

    #[test]
    fn long_tables_continue_on_more_pages() {
        let first = Month::of(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        let months: Vec<Month> = std::iter::successors(Some(first), |m| Some(m.previous()))
            .take(ROWS_PER_PAGE * 2 + 1)
            .collect();
        let rows = activity_rows(&months, &[]);
        let pdf = render("many", Utc::now(), &rows);
        pdf::tests::assert_well_formed(&pdf);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 3") && text.contains("(Page 3 of 3."));
        assert_eq!(text.matches("(Total) Tj").count(), 1);
        // The header row is repeated on each page.
        assert_eq!(text.matches("(E-mails sent) Tj").count(), 3);
    }

    #[test]
    fn columns_fit_their_content_and_fill_the_line() {
        let body = [["2025-01".into(), "1".into(), "2".into(), "3".into()]];
        let total = ["Total".into(), "1".into(), "2".into(), "3".into()];
        let table = Table::fit(&body, &total);
        assert_eq!(table.edges[0], MARGIN);
        assert!((table.edges[4] - (MARGIN + TABLE_WIDTH)).abs() < 0.01);
        // The column with the longest title is the widest.
        let widths: Vec<f32> = table.edges.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(widths[1] > widths[2], "{widths:?}");

        let long = ["x".repeat(200), "1".into(), "2".into(), "3".into()];
        let table = Table::fit(&[long], &total);
        assert!((table.edges[4] - (MARGIN + TABLE_WIDTH)).abs() < 0.01, "squeezed to the line");
    }
}
