//! A minimal PDF 1.4 writer (ISO 32000 subset) for text reports, so reports need no PDF crate:
//! pages of text in the standard Helvetica fonts, which every viewer has, and ruled lines.
//! It writes the objects, an exact cross-reference table and the trailer; strings are escaped
//! and mapped to WinAnsiEncoding.

use std::fmt::Write as _;

/// A4, in points.
pub const PAGE_WIDTH: f32 = 595.0;
pub const PAGE_HEIGHT: f32 = 842.0;

/// The two fonts each page can use.
#[derive(Debug, Clone, Copy)]
pub enum Font {
    Helvetica,
    HelveticaBold,
}

impl Font {
    fn resource(self) -> &'static str {
        match self {
            Font::Helvetica => "F1",
            Font::HelveticaBold => "F2",
        }
    }
}

/// One page's drawing operators.
#[derive(Debug, Default)]
pub struct Page {
    ops: String,
}

impl Page {
    /// Writes `text` with its baseline starting at (`x`, `y`), from the bottom-left corner.
    pub fn text(&mut self, font: Font, size: f32, x: f32, y: f32, text: &str) {
        let _ = writeln!(
            self.ops,
            "BT /{} {size:.1} Tf {x:.2} {y:.2} Td ({}) Tj ET",
            font.resource(),
            escape(text)
        );
    }

    /// Writes `text` in regular Helvetica so that it ends at `right`, for columns of numbers.
    pub fn text_right(&mut self, size: f32, right: f32, y: f32, text: &str) {
        self.text(Font::Helvetica, size, right - text_width(text, size), y, text);
    }

    /// A thin line from (`x1`, `y`) to (`x2`, `y`).
    pub fn rule(&mut self, x1: f32, x2: f32, y: f32) {
        let _ = writeln!(self.ops, "0.5 w {x1:.2} {y:.2} m {x2:.2} {y:.2} l S");
    }
}

/// The whole file: catalog, page tree, fonts, document info, then each page and its content.
pub fn document(title: &str, pages: &[Page]) -> Vec<u8> {
    const FIRST_PAGE: usize = 6;
    let kids: Vec<String> = (0..pages.len()).map(|i| format!("{} 0 R", FIRST_PAGE + 2 * i)).collect();
    let font = |name: &str| format!("<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>");
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()),
        font("Helvetica"),
        font("Helvetica-Bold"),
        format!("<< /Title ({}) /Producer (Celeriac) >>", escape(title)),
    ];
    for (i, page) in pages.iter().enumerate() {
        let contents = FIRST_PAGE + 2 * i + 1;
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
             /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {contents} 0 R >>"
        ));
        objects.push(format!("<< /Length {} >>\nstream\n{}\nendstream", page.ops.len(), page.ops));
    }

    // A comment with high bytes right after the header tells tools the file is binary.
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        // Each entry is exactly 20 bytes: 10 digits, space, 5 digits, space, `n`, space, LF.
        let _ = writeln!(tail, "{offset:010} 00000 n ");
    }
    let _ = write!(
        tail,
        "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.extend_from_slice(tail.as_bytes());
    out
}

/// `text` as the inside of a PDF literal string: `\`, `(` and `)` escaped, Latin-1 letters
/// as octal WinAnsi codes, anything else the fonts cannot show as `?`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{ff}' => {
                let _ = write!(out, "\\{:03o}", u32::from(c));
            }
            _ => out.push('?'),
        }
    }
    out
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

/// How wide `text` is in regular Helvetica at `size` points.
pub fn text_width(text: &str, size: f32) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| {
            (c as usize)
                .checked_sub(32)
                .and_then(|i| HELVETICA_WIDTHS.get(i))
                .map_or(556, |&w| u32::from(w))
        })
        .sum();
    units as f32 * size / 1000.0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks the structure a reader relies on: header, `%%EOF`, `startxref` pointing at the
    /// table, and every table entry pointing at the start of its `N 0 obj`.
    pub(crate) fn assert_well_formed(pdf: &[u8]) {
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(pdf);
        let startxref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(pdf[startxref..].starts_with(b"xref\n0 "));
        let table = &text[text.rfind("xref\n0 ").unwrap()..];
        let mut lines = table.lines().skip(1);
        let count: usize = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(lines.next(), Some("0000000000 65535 f "));
        for n in 1..count {
            let entry = lines.next().unwrap();
            assert_eq!(entry.len(), 19, "{entry:?}");
            let offset: usize = entry[..10].parse().unwrap();
            assert!(
                pdf[offset..].starts_with(format!("{n} 0 obj\n").as_bytes()),
                "object {n} is not at {offset}"
            );
        }
        assert!(text.contains(&format!("/Size {count} ")));
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(escape(r"a (b) \c"), r"a \(b\) \\c");
        assert_eq!(escape("café €"), "caf\\351 ?");
    }

    #[test]
    fn widths_follow_the_font() {
        assert_eq!(text_width("00", 10.0), 11.12);
        assert!(text_width("W", 10.0) > text_width("i", 10.0));
    }

    #[test]
    fn documents_have_exact_cross_references() {
        let mut pages = vec![Page::default(), Page::default()];
        pages[0].text(Font::HelveticaBold, 18.0, 50.0, 780.0, "Title (with parens)");
        pages[0].rule(50.0, 545.0, 770.0);
        pages[1].text_right(10.0, 545.0, 700.0, "12.34");
        let pdf = document("Test", &pages);
        assert_well_formed(&pdf);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Count 2") && text.contains("(Title \\(with parens\\)) Tj"));
    }
}
