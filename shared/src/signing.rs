//! Signatures of the requests Celeriac sends to other people's servers (a remote task's run,
//! a completion webhook), so the receiver can tell they come from Celeriac and are fresh.
//!
//! The header is `Celeriac-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the MAC taken
//! with the shared secret over `<t>.<body>` (the timestamp, a dot, the exact body bytes), as
//! Stripe does. A receiver recomputes it, compares in constant time, and refuses a timestamp
//! further than its tolerance from its clock ([`DEFAULT_TOLERANCE`], 5 minutes): a captured
//! request cannot be replayed later. Each attempt is signed anew, so a retry is fresh too.

use std::time::Duration;

use ring::hmac;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Celeriac-Signature";

/// How far a signature's timestamp may be from the receiver's clock.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed (expected t=<seconds>,v1=<hex>)")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The hex HMAC-SHA256 of `<timestamp>.<body>` with `secret`.
pub fn mac_hex(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    hex(ctx.sign().as_ref())
}

/// The header value for `body` sent at `timestamp` (unix seconds).
pub fn header_value(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", mac_hex(secret, timestamp, body))
}

/// Checks a header value against `body`, at `now` (unix seconds).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance: Duration) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut mac = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => mac = decode_hex(v),
            _ => {}
        }
    }
    let (Some(timestamp), Some(mac)) = (timestamp, mac) else {
        return Err(SignatureError::Malformed);
    };
    if (now - timestamp).unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    hmac::verify(&key, &signed, &mac).map_err(|_| SignatureError::Mismatch)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The bytes of a hex string; `None` when it is not hex of whole bytes.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let header = header_value(b"secret", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(b"secret", &header, b"{\"a\":1}", 1_700_000_010, DEFAULT_TOLERANCE), Ok(()));
        assert_eq!(
            verify(b"secret", &header, b"{\"a\":2}", 1_700_000_010, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, b"{\"a\":1}", 1_700_000_010, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", &header, b"{\"a\":1}", 1_700_000_301, DEFAULT_TOLERANCE),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"secret", "v1=zz", b"", 0, DEFAULT_TOLERANCE),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_timestamp_dot_body() {
        // Python: hmac.new(b"Jefe", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            mac_hex(b"Jefe", 1_700_000_000, b"{\"a\":1}"),
            "fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
        assert_eq!(decode_hex(&hex(&[0, 255, 16])), Some(vec![0, 255, 16]));
    }
}
