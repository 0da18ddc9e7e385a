//! Realistic task payloads for the tests of size limits and compression: JSON as an
//! application would send it (an order and its lines), not a repeated letter that compresses
//! better than anything real.

use serde_json::{Value, json};

/// An order with as many lines as make about `bytes` of JSON (a little more).
pub fn order_json(bytes: usize) -> Value {
    let line = |i: usize| json!({"sku": format!("SKU-{:06}", i * 7919 % 1_000_000), "name": format!("Item {i}"), "qty": i % 7 + 1, "price_cents": i * 137 % 10_000});
    let mut lines = Vec::new();
    let mut size = 0;
    while size < bytes {
        let next = line(lines.len());
        size += next.to_string().len() + 1;
        lines.push(next);
    }
    json!({ "order": "A-1", "customer": "c-42", "lines": lines })
}
