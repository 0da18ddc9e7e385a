//! The result of a run: one table on stdout, and JSON for comparisons.

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub measure: String,
    pub value: f64,
    pub unit: String,
}

impl Report {
    pub fn add(&mut self, measure: &str, value: f64, unit: &str) {
        println!("  {measure:<70} {:>12} {unit}", format_value(value));
        self.rows.push(Row {
            measure: measure.into(),
            value,
            unit: unit.into(),
        });
    }

    pub fn table(&self) -> String {
        let mut out = String::from("| measure | value | unit |\n|---|---:|---|\n");
        for row in &self.rows {
            out.push_str(&format!("| {} | {} | {} |\n", row.measure, format_value(row.value), row.unit));
        }
        out
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
