//! The PDF file of a report, written with `pdf-writer`: A4 pages of text in the standard
//! Helvetica fonts (every viewer has them, so nothing is embedded and the files stay small),
//! ruled lines and shaded boxes. The crate writes the objects, the cross-reference table and
//! the trailer and escapes strings; this module adds what the layout needs to measure text (the
//! fonts' advance widths) and the WinAnsi encoding the fonts are declared with.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// A4, in points.
pub const PAGE_WIDTH: f32 = 595.0;
pub const PAGE_HEIGHT: f32 = 842.0;

/// The two fonts each page can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    Helvetica,
    HelveticaBold,
}

impl Font {
    const ALL: [Font; 2] = [Font::Helvetica, Font::HelveticaBold];

    /// The name of the font in each page's resources.
    fn resource(self) -> Name<'static> {
        match self {
            Font::Helvetica => Name(b"F1"),
            Font::HelveticaBold => Name(b"F2"),
        }
    }

    fn base_font(self) -> Name<'static> {
        match self {
            Font::Helvetica => Name(b"Helvetica"),
            Font::HelveticaBold => Name(b"Helvetica-Bold"),
        }
    }

    /// How wide `text` is in this font at `size` points.
    pub fn width(self, text: &str, size: f32) -> f32 {
        let widths = match self {
            Font::Helvetica => &HELVETICA_WIDTHS,
            Font::HelveticaBold => &HELVETICA_BOLD_WIDTHS,
        };
        let units: u32 = text
            .chars()
            .map(|c| {
                (c as usize)
                    .checked_sub(32)
                    .and_then(|i| widths.get(i))
                    .map_or(556, |&w| u32::from(w))
            })
            .sum();
        units as f32 * size / 1000.0
    }
}

/// One page's drawing operators.
pub struct Page {
    content: Content,
}

impl Default for Page {
    fn default() -> Self {
        Self { content: Content::new() }
    }
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page").finish_non_exhaustive()
    }
}

impl Page {
    /// Writes `text` with its baseline starting at (`x`, `y`), from the bottom-left corner.
    pub fn text(&mut self, font: Font, size: f32, x: f32, y: f32, text: &str) {
        self.content
            .begin_text()
            .set_font(font.resource(), size)
            .next_line(x, y)
            .show(Str(&win_ansi(text)))
            .end_text();
    }

    /// A line from (`x1`, `y`) to (`x2`, `y`), `width` points thick.
    pub fn rule(&mut self, x1: f32, x2: f32, y: f32, width: f32) {
        self.content.set_line_width(width).move_to(x1, y).line_to(x2, y).stroke();
    }

    /// A box filled with `gray` (0 black, 1 white), its bottom-left corner at (`x`, `y`).
    pub fn shade(&mut self, x: f32, y: f32, width: f32, height: f32, gray: f32) {
        self.content
            .save_state()
            .set_fill_gray(gray)
            .rect(x, y, width, height)
            .fill_nonzero()
            .restore_state();
    }
}

/// The whole file: catalog, page tree, fonts, document info, then each page and its content.
pub fn document(title: &str, pages: Vec<Page>) -> Vec<u8> {
    let (catalog, tree, info) = (Ref::new(1), Ref::new(2), Ref::new(3));
    let fonts = [Ref::new(4), Ref::new(5)];
    let page_ids: Vec<(Ref, Ref)> = (0..pages.len() as i32)
        .map(|i| (Ref::new(6 + 2 * i), Ref::new(7 + 2 * i)))
        .collect();

    let mut pdf = Pdf::new();
    // Nothing here needs more than PDF 1.4, which every reader opens.
    pdf.set_version(1, 4);
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().map(|&(page, _)| page))
        .count(pages.len() as i32);
    for (font, id) in Font::ALL.into_iter().zip(fonts) {
        // The widths the layout measured with, so a viewer that stands another font in for
        // Helvetica scales it to the same line lengths.
        let widths = (32u8..=255).map(|code| font.width(char::from(code).encode_utf8(&mut [0; 4]), 1000.0));
        pdf.type1_font(id)
            .base_font(font.base_font())
            .first_char(32)
            .last_char(255)
            .widths(widths)
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    pdf.document_info(info).title(TextStr(title)).producer(TextStr("Celeriac"));
    for (page, (page_id, content_id)) in pages.into_iter().zip(page_ids) {
        let mut writer = pdf.page(page_id);
        writer
            .parent(tree)
            .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .contents(content_id);
        let mut resources = writer.resources();
        let mut font_dict = resources.fonts();
        for (font, id) in Font::ALL.into_iter().zip(fonts) {
            font_dict.pair(font.resource(), id);
        }
        font_dict.finish();
        resources.finish();
        writer.finish();
        pdf.stream(content_id, &page.content.finish());
    }
    pdf.finish()
}

/// `text` in WinAnsiEncoding, which the fonts are declared with: ASCII and Latin-1 letters
/// as their own byte, anything else the fonts cannot show as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' | '\u{a0}'..='\u{ff}' => c as u8,
            _ => b'?',
        })
        .collect()
}

/// Advance widths of Helvetica for ' ' to '~', in thousandths of the font size (its AFM).
const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' ' to '/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // '0' to '?'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // '@' to 'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 'P' to '_'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // '`' to 'o'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p' to '~'
];

/// The same for Helvetica-Bold (its AFM).
const HELVETICA_BOLD_WIDTHS: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // ' ' to '/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // '0' to '?'
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // '@' to 'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // 'P' to '_'
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // '`' to 'o'
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, // 'p' to '~'
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks the structure a reader relies on: header, `%%EOF`, `startxref` pointing at the
    /// table, and every table entry pointing at the start of its `N 0 obj`.
    pub(crate) fn assert_well_formed(pdf: &[u8]) {
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
        let text = String::from_utf8_lossy(pdf);
        let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n0 "));
        let table = &text[text.rfind("xref\n0 ").unwrap()..];
        let mut lines = table.lines().skip(1);
        let count: usize = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(lines.next(), Some("0000000000 65535 f"));
        for n in 1..count {
            let entry = lines.next().unwrap();
            assert_eq!(entry.len(), 18, "{entry:?}");
            let offset: usize = entry[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(format!("{n} 0 obj\n").as_bytes()),
                "object {n} is not at {offset}"
            );
        }
        assert!(text.contains(&format!("/Size {count}")));
    }

    #[test]
    fn text_is_win_ansi_and_escaped() {
        assert_eq!(win_ansi("café €"), b"caf\xe9 ?");
        let mut page = Page::default();
        page.text(Font::Helvetica, 10.0, 0.0, 0.0, r"a ) b \ c");
        let pdf = document("T", vec![page]);
        assert!(String::from_utf8_lossy(&pdf).contains(r"(a \) b \\ c) Tj"));
    }

    #[test]
    fn widths_follow_the_font() {
        assert_eq!(Font::Helvetica.width("00", 10.0), 11.12);
        assert!(Font::Helvetica.width("W", 10.0) > Font::Helvetica.width("i", 10.0));
        assert!(Font::HelveticaBold.width("Total", 10.0) > Font::Helvetica.width("Total", 10.0));
        assert_eq!(Font::HelveticaBold.width("09", 10.0), Font::Helvetica.width("09", 10.0));
    }

    #[test]
    fn documents_have_exact_cross_references() {
        let mut pages = vec![Page::default(), Page::default()];
        pages[0].text(Font::HelveticaBold, 18.0, 50.0, 780.0, "Title (with parens)");
        pages[0].rule(50.0, 545.0, 770.0, 0.5);
        pages[1].shade(50.0, 690.0, 495.0, 16.0, 0.9);
        pages[1].text(Font::Helvetica, 10.0, 500.0, 700.0, "12.34");
        let pdf = document("Test", pages);
        assert_well_formed(&pdf);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 2") && text.contains("(Title (with parens)) Tj"));
        assert!(text.contains("/BaseFont /Helvetica-Bold") && text.contains("/Title (Test)"));
    }
}
