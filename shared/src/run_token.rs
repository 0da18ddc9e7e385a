//! Run tokens: the capability a worker outside the process (a pull worker over HTTP, or a
//! remote task's endpoint reporting progress) holds for one run of one task. A token names
//! the task, the delivery it started (the fencing token of `start.lua`), the worker that
//! holds its lease, the retries so far and the run's hard deadline, and is signed with an
//! HMAC key kept in Redis (`Broker::run_secret`), so every gateway and worker of a namespace
//! issues and checks the same tokens, and nobody can forge one for another task or run.
//!
//! The signature only proves the token was issued; whether its run still holds the task is
//! decided by the in-flight hash at each use (the same fence as a native worker's writes), so
//! a token whose run lost its lease is refused even though it is genuine.
//!
//! Text form: `<hex of the fields, newline-separated>.<hex of the first 16 bytes of the
//! HMAC-SHA256 of that hex>`; URL-safe as it is.

use ring::hmac;

use crate::id::TaskId;
use crate::signing::{decode_hex, hex};

/// One run of one task, as a token carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunToken {
    pub id: TaskId,
    /// The delivery the run started (its fence).
    pub delivery: u32,
    /// The worker whose in-flight hash holds the task.
    pub worker: String,
    /// Failed attempts so far that were retried (for the retry decision).
    pub retries: u32,
    /// When the hard time limit ends the run (ms since the epoch), if it has one.
    pub deadline_ms: Option<i64>,
}

/// Why a token text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid run token")]
pub struct BadToken;

const MAC_BYTES: usize = 16;

impl RunToken {
    /// The token's text, signed with `secret`.
    pub fn encode(&self, secret: &[u8]) -> String {
        let fields = format!(
            "{}\n{}\n{}\n{}\n{}",
            self.id,
            self.delivery,
            self.worker,
            self.retries,
            self.deadline_ms.map(|d| d.to_string()).unwrap_or_default()
        );
        let body = hex(fields.as_bytes());
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body.as_bytes());
        format!("{body}.{}", hex(&mac.as_ref()[..MAC_BYTES]))
    }

    /// Checks the signature of `text` and reads it.
    pub fn decode(secret: &[u8], text: &str) -> Result<Self, BadToken> {
        let (body, mac) = text.split_once('.').ok_or(BadToken)?;
        let mac = decode_hex(mac).ok_or(BadToken)?;
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body.as_bytes());
        // Compared in constant time (the tag is truncated, so not with ring's verify).
        if mac.len() != MAC_BYTES || !constant_time_eq(&mac, &expected.as_ref()[..MAC_BYTES]) {
            return Err(BadToken);
        }
        let fields = String::from_utf8(decode_hex(body).ok_or(BadToken)?).map_err(|_| BadToken)?;
        let mut parts = fields.split('\n');
        let mut next = || parts.next().ok_or(BadToken);
        let id = TaskId::parse(next()?).ok_or(BadToken)?;
        let delivery = next()?.parse().map_err(|_| BadToken)?;
        let worker = next()?.to_owned();
        let retries = next()?.parse().map_err(|_| BadToken)?;
        let deadline = next()?;
        let deadline_ms = if deadline.is_empty() {
            None
        } else {
            Some(deadline.parse().map_err(|_| BadToken)?)
        };
        Ok(Self {
            id,
            delivery,
            worker,
            retries,
            deadline_ms,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QueueName;

    fn token() -> RunToken {
        RunToken {
            id: TaskId::generate(&QueueName::parse("images").unwrap()),
            delivery: 3,
            worker: "pull-abc".into(),
            retries: 1,
            deadline_ms: Some(1_700_000_000_000),
        }
    }

    #[test]
    fn a_token_reads_back_with_its_key_only() {
        let t = token();
        let text = t.encode(b"key");
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.'), "{text}");
        assert_eq!(RunToken::decode(b"key", &text), Ok(t.clone()));
        assert_eq!(RunToken::decode(b"other", &text), Err(BadToken));
        let no_deadline = RunToken { deadline_ms: None, ..t };
        assert_eq!(RunToken::decode(b"key", &no_deadline.encode(b"key")), Ok(no_deadline));
    }

    #[test]
    fn a_changed_token_is_refused() {
        let text = token().encode(b"key");
        let (body, mac) = text.split_once('.').unwrap();
        // Another delivery, with the old signature.
        let forged = hex(String::from_utf8(decode_hex(body).unwrap())
            .unwrap()
            .replacen("\n3\n", "\n4\n", 1)
            .as_bytes());
        assert_eq!(RunToken::decode(b"key", &format!("{forged}.{mac}")), Err(BadToken));
        for bad in ["", ".", "zz.zz", &text[..text.len() - 2]] {
            assert_eq!(RunToken::decode(b"key", bad), Err(BadToken), "{bad:?}");
        }
    }
}
