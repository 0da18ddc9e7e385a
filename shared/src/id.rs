//! Task ids and queue names.
//!
//! A task id carries its queue: `emails-031ncPED5QTGLrz5ivqvoB`. Every key of a task
//! lives under its queue's hash tag (`{emails}`), so knowing the id is enough to find the record
//! in O(1) on a single Redis or on Redis Cluster (docs/design.md, invariant 9), without an index.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest queue name we accept; keeps keys short and ids readable.
pub const MAX_QUEUE_LEN: usize = 64;

/// Most shards a queue may have (docs/design.md, "Sharded queues").
pub const MAX_SHARDS: u32 = 256;

/// Between a sharded queue's name and its shard's number: `emails~3`. Not a character of
/// queue names, so a shard's name never clashes with a queue's.
const SHARD_MARK: char = '~';

/// The queue of a task that has no route and no known type, and of a schedule or remote task
/// type that names none: `default`.
pub fn fallback_queue() -> QueueName {
    QueueName::parse("default").expect("a valid queue name")
}

/// A validated queue name: ASCII letters, digits, `_`, `.` and `-`, 1 to 64 characters.
/// Braces are excluded because the name becomes a Redis Cluster hash tag.
///
/// It may also name one shard of a sharded queue, `<queue>~<n>` with `n` from 1 to
/// [`MAX_SHARDS`] - 1 (shard 0 is the queue's own name): each shard is a queue of its own in
/// Redis, with its own hash tag, so a Cluster places the shards on different nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct QueueName(String);

impl QueueName {
    pub fn parse(name: &str) -> Result<Self, String> {
        if let Some((base, digits)) = name.split_once(SHARD_MARK) {
            let base = Self::parse(base)?;
            // `q~01` or `q~+1` would name shard 1 a second way.
            return match digits.parse::<u32>() {
                Ok(n) if (1..MAX_SHARDS).contains(&n) && n.to_string() == digits => Ok(base.shard(n)),
                _ => Err(format!(
                    "queue shard {name:?} must be <queue>~<n> with n from 1 to {}",
                    MAX_SHARDS - 1
                )),
            };
        }
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if name.is_empty() || name.len() > MAX_QUEUE_LEN || !name.chars().all(valid_char) {
            return Err(format!(
                "queue name {name:?} must be 1 to {MAX_QUEUE_LEN} characters of A-Z, a-z, 0-9, '_', '.', '-'"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Shard `n` of this queue: the queue itself for 0, else `<queue>~<n>`. Only for a queue
    /// that is not itself a shard, and `n` below [`MAX_SHARDS`].
    pub fn shard(&self, n: u32) -> Self {
        debug_assert!(!self.is_shard() && n < MAX_SHARDS);
        match n {
            0 => self.clone(),
            n => Self(format!("{}{SHARD_MARK}{n}", self.0)),
        }
    }

    /// Whether this names a shard other than a queue's first (`emails~3`).
    pub fn is_shard(&self) -> bool {
        self.0.contains(SHARD_MARK)
    }

    /// The name of the queue `name` belongs to: `name` itself, or for a shard (`emails~3`) its
    /// queue's (`emails`). Without allocating, for checks made on every request.
    pub fn queue_name_of(name: &str) -> &str {
        name.split_once(SHARD_MARK).map_or(name, |(base, _)| base)
    }

    /// The queue this shard belongs to (itself for a queue or its shard 0), and the shard's
    /// number.
    pub fn sharded_queue(&self) -> (Self, u32) {
        match self.0.split_once(SHARD_MARK) {
            Some((base, n)) => (Self(base.to_owned()), n.parse().unwrap_or(0)),
            None => (self.clone(), 0),
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for QueueName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        QueueName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A task id: the queue name, a dash, and a suffix, one of two forms of a UUID:
/// - a fresh task's: 22 base62 digits (`0-9 A-Z a-z`) of a UUID v7, so ids sort by creation
///   time; 10 characters shorter than hex, and a pending task holds its suffix three times
///   (its key, its queue's list and the listing log): 273 to 236 bytes of Redis a task;
/// - a deterministic one's (scheduled firings, workflow members): 32 lowercase hex digits of a
///   UUID v5, the form every earlier release made, so an id derived from the same seed before
///   and after an upgrade is the same id.
///
/// Both forms are read everywhere, so records made before the short form are still found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskId {
    queue: QueueName,
    /// The task's own keys are named after this part.
    suffix: String,
}

impl TaskId {
    /// A fresh, time-ordered id on `queue`.
    pub fn generate(queue: &QueueName) -> Self {
        Self {
            queue: queue.clone(),
            suffix: base62_of(uuid::Uuid::now_v7().as_u128()),
        }
    }

    /// A deterministic id on `queue` derived from `seed` (same seed, same id).
    pub fn derived(queue: &QueueName, seed: &str) -> Self {
        let uuid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, seed.as_bytes());
        Self {
            queue: queue.clone(),
            suffix: hex_of(uuid),
        }
    }

    /// Parses an id as given in a URL. `None` when it cannot be one of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let (queue, suffix) = raw.rsplit_once('-')?;
        Self::on(&QueueName::parse(queue).ok()?, suffix)
    }

    /// The id with this suffix on `queue` (as the scripts name tasks); `None` when the suffix
    /// is neither form of a UUID (22 base62 digits, 32 lowercase hex digits).
    pub fn on(queue: &QueueName, suffix: &str) -> Option<Self> {
        value_of_suffix(suffix)?;
        Some(Self {
            queue: queue.clone(),
            suffix: suffix.to_owned(),
        })
    }

    pub fn queue(&self) -> &QueueName {
        &self.queue
    }

    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// When the id was made, in ms since the epoch: for a fresh (time-ordered) id; `None` for
    /// a derived one, which carries no time.
    pub fn made_ms(&self) -> Option<i64> {
        made_ms_of(&self.suffix)
    }
}

/// When a task with this id suffix was made, if the suffix is a time-ordered id (UUID v7: its
/// top 48 bits are the ms since the epoch, the next 4 the version, `7`); `None` for a derived
/// id (UUID v5), which carries no time.
pub(crate) fn made_ms_of(suffix: &str) -> Option<i64> {
    let uuid = value_of_suffix(suffix)?;
    ((uuid >> 76) & 0xf == 7).then_some((uuid >> 80) as i64)
}

/// The UUID a suffix spells, in either form; `None` when it is neither.
fn value_of_suffix(suffix: &str) -> Option<u128> {
    match suffix.len() {
        BASE62_LEN => value_of_base62(suffix),
        32 if suffix.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) => u128::from_str_radix(suffix, 16).ok(),
        _ => None,
    }
}

/// Digits of the short form, in ASCII order: fixed-width suffixes then sort as their values do.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 digits of a 128-bit value (62^22 > 2^128 > 62^21).
const BASE62_LEN: usize = 22;

/// 62^10, the largest power of 62 below 2^64: the value is cut into three pieces of at most
/// 10 digits (2, 10, 10), so only two divisions are of 128-bit numbers, which are slow.
const BASE62_POW10: u128 = 839_299_365_868_340_224;

/// The 22 base62 digits of `value`, most significant first.
fn base62_of(value: u128) -> String {
    let mut digits = [b'0'; BASE62_LEN];
    let upper = value / BASE62_POW10;
    let pieces = [
        (upper / BASE62_POW10) as u64,
        (upper % BASE62_POW10) as u64,
        (value % BASE62_POW10) as u64,
    ];
    for (chunk, mut piece) in digits.rchunks_mut(10).zip(pieces.into_iter().rev()) {
        for digit in chunk.iter_mut().rev() {
            *digit = BASE62[(piece % 62) as usize];
            piece /= 62;
        }
    }
    digits.iter().map(|&d| d as char).collect()
}

/// The value of 22 base62 digits; `None` for another character or a value past 128 bits.
/// Read in the same three pieces as [`base62_of`] writes, each in 64-bit arithmetic: the
/// gateway reads a fresh id's time twice a request.
fn value_of_base62(digits: &str) -> Option<u128> {
    let digits = digits.as_bytes();
    if digits.len() != BASE62_LEN {
        return None;
    }
    let piece = |part: &[u8]| {
        part.iter().try_fold(0u64, |value, &c| {
            let digit = match c {
                b'0'..=b'9' => c - b'0',
                b'A'..=b'Z' => c - b'A' + 10,
                b'a'..=b'z' => c - b'a' + 36,
                _ => return None,
            };
            Some(value * 62 + u64::from(digit))
        })
    };
    let (high, middle, low) = (piece(&digits[..2])?, piece(&digits[2..12])?, piece(&digits[12..])?);
    let lower = u128::from(middle) * BASE62_POW10 + u128::from(low);
    u128::from(high).checked_mul(BASE62_POW10 * BASE62_POW10)?.checked_add(lower)
}

/// The 32 lowercase hex digits of a uuid (without the formatting machinery).
fn hex_of(uuid: uuid::Uuid) -> String {
    uuid.simple().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.queue.as_str())?;
        f.write_str("-")?;
        f.write_str(&self.suffix)
    }
}

impl Serialize for TaskId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TaskId::parse(&raw).ok_or_else(|| serde::de::Error::custom("not a task id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_even_with_dashes_in_the_queue() {
        let queue = QueueName::parse("high-priority.v2").unwrap();
        let id = TaskId::generate(&queue);
        let parsed = TaskId::parse(&id.to_string()).unwrap();
        assert_eq!(parsed, id);
        assert_eq!(TaskId::on(&queue, id.suffix()), Some(id.clone()));
        assert_eq!(parsed.queue().as_str(), "high-priority.v2");
        assert_eq!(id.suffix().len(), 22, "{id}");
        assert!(id.suffix().bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
    }

    #[test]
    fn the_short_form_spells_every_128_bit_value_in_order() {
        let values = [
            0,
            1,
            61,
            62,
            BASE62_POW10 - 1,
            BASE62_POW10,
            BASE62_POW10 * BASE62_POW10,
            0x0193_a1b2_c3d4_7e5f_8071_8293_a4b5_c6d7,
            u128::MAX / 3,
            u128::MAX - 1,
            u128::MAX,
        ];
        for pair in values.windows(2) {
            let (low, high) = (base62_of(pair[0]), base62_of(pair[1]));
            assert!(low < high, "{low} sorts before {high}");
        }
        for value in values {
            let digits = base62_of(value);
            assert_eq!(digits.len(), BASE62_LEN);
            assert_eq!(value_of_base62(&digits), Some(value), "{digits}");
        }
        assert_eq!(base62_of(0), "0".repeat(22));
        assert_eq!(base62_of(61), format!("{}z", "0".repeat(21)));
        assert_eq!(value_of_base62(&"z".repeat(22)), None, "past 128 bits");
    }

    #[test]
    fn fresh_ids_sort_by_creation_time() {
        let queue = QueueName::parse("emails").unwrap();
        let first = TaskId::generate(&queue);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = TaskId::generate(&queue);
        assert!(first.suffix() < second.suffix(), "{first} {second}");
    }

    #[test]
    fn a_time_ordered_id_tells_when_it_was_made_and_a_derived_one_does_not() {
        let queue = QueueName::parse("default").unwrap();
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let made = made_ms_of(TaskId::generate(&queue).suffix()).unwrap();
        let after = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((before..=after).contains(&made), "{before} <= {made} <= {after}");
        assert_eq!(made_ms_of(TaskId::derived(&queue, "a").suffix()), None);
        assert_eq!(made_ms_of("0193a1b2c3d4"), None);
        // The hex form of a UUID v7, as releases before the short form made every id.
        assert_eq!(made_ms_of("0193a1b2c3d47e5f80718293a4b5c6d7"), Some(0x0193_a1b2_c3d4));
        let v7 = 0x0193_a1b2_c3d4_7e5f_8071_8293_a4b5_c6d7_u128;
        assert_eq!(made_ms_of(&base62_of(v7)), Some(0x0193_a1b2_c3d4));
    }

    #[test]
    fn derived_ids_are_deterministic() {
        let queue = QueueName::parse("default").unwrap();
        assert_eq!(TaskId::derived(&queue, "a"), TaskId::derived(&queue, "a"));
        assert_ne!(TaskId::derived(&queue, "a"), TaskId::derived(&queue, "b"));
        // The hex form every release made (UUID v5 of the seed in the OID namespace): a firing
        // derived by a scheduler of an older release is the same id.
        assert_eq!(TaskId::derived(&queue, "a").suffix(), "d720e32d47655177b65b42dd7f6e6445");
    }

    #[test]
    fn malformed_ids_and_queue_names_are_rejected() {
        for raw in [
            "",
            "abc",
            "emails-xyz",
            "emails-0193A1B2C3D4E5F60718293A4B5C6D7E",
            "{x}-0193a1b2c3d4e5f60718293a4b5c6d7e",
        ] {
            assert!(TaskId::parse(raw).is_none(), "{raw}");
        }
        let queue = QueueName::parse("emails").unwrap();
        assert!(TaskId::on(&queue, "0193A1B2C3D4E5F60718293A4B5C6D7E").is_none());
        assert!(TaskId::on(&queue, "0193a1b2").is_none());
        assert!(TaskId::on(&queue, "0193a1b2c3d4e5f60718293a4b5c6d7e").is_some());
        assert!(TaskId::on(&queue, "031ncPED5QTGLrz5ivqvoB").is_some());
        for bad in ["031ncPED5QTGLrz5ivqvo", "031ncPED5QTGLrz5ivqvo_", "031ncPED5QTGLrz5ivqv-B"] {
            assert!(TaskId::on(&queue, bad).is_none(), "{bad}");
        }
        assert!(QueueName::parse("a{b}").is_err());
        assert!(QueueName::parse(&"q".repeat(65)).is_err());
    }

    #[test]
    fn a_shard_names_its_queue_and_number_and_its_ids_round_trip() {
        let queue = QueueName::parse("emails").unwrap();
        assert_eq!(queue.shard(0), queue, "shard 0 is the queue itself");
        let third = queue.shard(3);
        assert_eq!(third.as_str(), "emails~3");
        assert_eq!(QueueName::parse("emails~3").unwrap(), third);
        assert_eq!(third.sharded_queue(), (queue.clone(), 3));
        assert_eq!(queue.sharded_queue(), (queue.clone(), 0));
        assert!(third.is_shard() && !queue.is_shard());
        let id = TaskId::generate(&third);
        assert!(id.to_string().starts_with("emails~3-"), "{id}");
        assert_eq!(TaskId::parse(&id.to_string()).unwrap(), id);
        for bad in [
            "emails~0",
            "emails~01",
            "emails~+1",
            "emails~256",
            "emails~",
            "~1",
            "emails~1~2",
            "a{b}~1",
        ] {
            assert!(QueueName::parse(bad).is_err(), "{bad}");
        }
    }
}
