//! Payload limits and compression: how large a task's arguments and result may be
//! (`[tasks] max_args_bytes`, `max_result_bytes`), and how the large ones are kept small in
//! Redis: a text above `[tasks] compress_above_bytes` is stored zstd-compressed, base64-coded
//! (every reader of a task hash reads text) behind a marker no JSON text can begin with.
//! Compression happens where a payload is written (enqueue's spec, finish's result) and
//! decompression where it is read back (`broker/decode.rs` for records, listings, events and
//! the archive; the worker's start), so every reader sees the JSON it was given.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::TaskError;
use crate::task::Verdict;
/// Starts a compressed payload. A JSON text never starts with a control character, so a
/// stored text with this prefix was compressed here, and any other is plain JSON.
pub const MARKER: &str = "\u{1}zstd:";

/// zstd's level: 3 (its default) compresses JSON about tenfold at a few hundred MB/s.
const LEVEL: i32 = 3;

/// The payload settings (`[tasks]`: [`crate::settings::TaskSettings::payload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Largest arguments (JSON text) an enqueue accepts; larger ones are refused (413).
    pub max_args_bytes: usize,
    /// Largest result (JSON text) a run may store; a larger one ends the task in FAILURE,
    /// kind `ResultTooLarge`.
    pub max_result_bytes: usize,
    /// Arguments and results longer than this are stored compressed; 0 = never.
    pub compress_above_bytes: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        Self {
            max_args_bytes: 512 * 1024,
            max_result_bytes: 1024 * 1024,
            compress_above_bytes: 4096,
        }
    }
}

impl PayloadLimits {
    /// Checks the limits, naming the setting at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        const MAX: usize = 512 * 1024 * 1024;
        for (name, value) in [
            ("tasks.max_args_bytes", self.max_args_bytes),
            ("tasks.max_result_bytes", self.max_result_bytes),
        ] {
            if value == 0 || value > MAX {
                return Err((name, format!("must be between 1 and {MAX} (Redis' largest value), not {value}")));
            }
        }
        if self.compress_above_bytes > MAX {
            return Err((
                "tasks.compress_above_bytes",
                format!("must be at most {MAX}; 0 turns compression off"),
            ));
        }
        Ok(())
    }

    /// `text` as it is stored: compressed when longer than the threshold and smaller so.
    pub fn pack<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.compress_above_bytes == 0 || text.len() <= self.compress_above_bytes {
            return Cow::Borrowed(text);
        }
        match zstd::bulk::compress(text.as_bytes(), LEVEL) {
            Ok(packed) if packed.len() * 4 / 3 + MARKER.len() < text.len() => {
                Cow::Owned(format!("{MARKER}{}", STANDARD_NO_PAD.encode(packed)))
            }
            _ => Cow::Borrowed(text),
        }
    }
}

impl PayloadLimits {
    /// A run's successful result as it is stored: `Success`, or a `FAILURE` of kind
    /// `ResultTooLarge` when the JSON is over `max_result_bytes`. Every path that ends a run
    /// (native workers, pull workers) goes through here.
    pub fn success(&self, json: String) -> Verdict {
        let limit = self.max_result_bytes;
        if json.len() <= limit {
            return Verdict::Success(json);
        }
        let message = format!(
            "the result is {} bytes of JSON, over the limit of {limit} bytes (tasks.max_result_bytes)",
            json.len()
        );
        Verdict::Failure(TaskError::permanent(message).with_kind("ResultTooLarge"))
    }
}

/// Reads a stored payload back: a compressed one is decompressed, any other is returned as it
/// is. A damaged compressed payload reads as empty text (which is no JSON, as if damaged).
pub fn unpack(stored: &str) -> Cow<'_, str> {
    let Some(coded) = stored.strip_prefix(MARKER) else {
        return Cow::Borrowed(stored);
    };
    let text = STANDARD_NO_PAD
        .decode(coded)
        .ok()
        .and_then(|packed| zstd::stream::decode_all(packed.as_slice()).ok())
        .and_then(|plain| String::from_utf8(plain).ok());
    Cow::Owned(text.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_payload_is_stored_compressed_and_reads_back_identical() {
        let limits = PayloadLimits::default();
        let text = celeriac_testkit::order_json(20 * 1024).to_string();
        let stored = limits.pack(&text);
        assert!(stored.starts_with(MARKER));
        assert!(stored.len() * 3 < text.len(), "{} -> {}", text.len(), stored.len());
        assert_eq!(unpack(&stored), text);
    }

    #[test]
    fn a_small_payload_or_compression_off_is_stored_as_it_is() {
        let small = r#"{"to":"a@example.com"}"#;
        assert!(matches!(PayloadLimits::default().pack(small), Cow::Borrowed(_)));
        let off = PayloadLimits {
            compress_above_bytes: 0,
            ..Default::default()
        };
        let large = celeriac_testkit::order_json(8192).to_string();
        assert_eq!(off.pack(&large), large);
        assert_eq!(unpack(&large), large, "plain JSON reads as it is");
        assert_eq!(unpack(&format!("{MARKER}not base64!")), "", "damaged: no JSON");
    }

    #[test]
    fn limits_are_checked_naming_the_setting() {
        let zero = PayloadLimits {
            max_result_bytes: 0,
            ..Default::default()
        };
        assert_eq!(zero.validate().unwrap_err().0, "tasks.max_result_bytes");
        assert!(PayloadLimits::default().validate().is_ok());
    }
}
