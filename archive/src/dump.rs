//! Decoding a task record handed over as Redis' `DUMP` of its hash (lua/archive.lua): one
//! opaque string in the stream entry instead of every field, so the ending script copies the
//! record's listpack whole instead of reading each field into Lua and writing it out again,
//! and the archiver parses one reply value per entry instead of two per field.
//!
//! A `DUMP` payload is the value in Redis' RDB serialization, then two bytes of RDB version
//! and eight of CRC64. A hash is serialized as a listpack (`RDB_TYPE_HASH_LISTPACK`, 16: the
//! compact encoding a record has while every value is at most `hash-max-listpack-value`
//! bytes), or as a count and field/value strings (`RDB_TYPE_HASH`, 4). Strings may be stored
//! as integers or LZF-compressed (`rdbcompression`). Anything else is refused with
//! [`DumpError`]; the archiver then has Redis decode it (`RESTORE`, archiver.rs), so a
//! format this decoder does not know costs time, not the ending.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DumpError {
    #[error("the dump ends too early")]
    Truncated,
    #[error("not a hash this decoder knows (RDB type {0})")]
    UnknownType(u8),
    #[error("unknown listpack entry encoding {0:#04x}")]
    UnknownEncoding(u8),
    #[error("a length this decoder cannot hold")]
    BadLength,
    #[error("a field or value is not UTF-8")]
    NotUtf8,
    #[error("an LZF-compressed string does not decompress")]
    Lzf,
    #[error("an odd number of listpack elements for a hash")]
    OddElements,
}

const RDB_TYPE_HASH: u8 = 4;
const RDB_TYPE_HASH_LISTPACK: u8 = 16;
/// The longest string Redis holds (`proto-max-bulk-len`'s ceiling): a larger length is garbage,
/// not a reason to allocate it.
const MAX_STRING: usize = 512 << 20;
/// RDB version (2 bytes) and CRC64 (8) after the value.
const FOOTER: usize = 10;

/// The fields of the hash whose `DUMP` payload this is.
pub fn hash_fields(payload: &[u8]) -> Result<HashMap<String, String>, DumpError> {
    let body = payload
        .len()
        .checked_sub(FOOTER)
        .map(|end| &payload[..end])
        .ok_or(DumpError::Truncated)?;
    let (&kind, rest) = body.split_first().ok_or(DumpError::Truncated)?;
    let mut reader = Reader { bytes: rest };
    match kind {
        RDB_TYPE_HASH_LISTPACK => listpack_fields(&reader.string()?),
        RDB_TYPE_HASH => {
            let n = reader.length()?;
            let mut fields = HashMap::with_capacity(n.min(1024));
            for _ in 0..n {
                let field = utf8(reader.string()?)?;
                fields.insert(field, utf8(reader.string()?)?);
            }
            Ok(fields)
        }
        other => Err(DumpError::UnknownType(other)),
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, DumpError> {
    String::from_utf8(bytes).map_err(|_| DumpError::NotUtf8)
}

/// RDB's lengths and strings, read from the front.
struct Reader<'a> {
    bytes: &'a [u8],
}

/// What a length prefix says: a length, or that a specially encoded string follows.
enum Prefix {
    Length(usize),
    Encoded(u8),
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DumpError> {
        if self.bytes.len() < n {
            return Err(DumpError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, DumpError> {
        Ok(self.take(1)?[0])
    }

    fn prefix(&mut self) -> Result<Prefix, DumpError> {
        let first = self.byte()?;
        let length = match first >> 6 {
            0 => u64::from(first & 0x3f),
            1 => (u64::from(first & 0x3f) << 8) | u64::from(self.byte()?),
            3 => return Ok(Prefix::Encoded(first & 0x3f)),
            _ => match first {
                0x80 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"))),
                0x81 => u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")),
                _ => return Err(DumpError::BadLength),
            },
        };
        usize::try_from(length).map(Prefix::Length).map_err(|_| DumpError::BadLength)
    }

    fn length(&mut self) -> Result<usize, DumpError> {
        match self.prefix()? {
            Prefix::Length(n) => Ok(n),
            Prefix::Encoded(_) => Err(DumpError::BadLength),
        }
    }

    /// A string: plain, an integer (8, 16 or 32 bits, little-endian) or LZF-compressed.
    fn string(&mut self) -> Result<Vec<u8>, DumpError> {
        match self.prefix()? {
            Prefix::Length(n) => Ok(self.take(n)?.to_vec()),
            Prefix::Encoded(0) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Prefix::Encoded(1) => Ok(i16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"))
                .to_string()
                .into_bytes()),
            Prefix::Encoded(2) => Ok(i32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"))
                .to_string()
                .into_bytes()),
            Prefix::Encoded(3) => {
                let compressed = self.length()?;
                let length = self.length()?;
                if length > MAX_STRING {
                    return Err(DumpError::BadLength);
                }
                let data = self.take(compressed)?;
                let out = lzf::decompress(data, length).map_err(|_| DumpError::Lzf)?;
                if out.len() == length { Ok(out) } else { Err(DumpError::Lzf) }
            }
            Prefix::Encoded(_) => Err(DumpError::BadLength),
        }
    }
}

/// The field/value pairs of a hash's listpack: a 6-byte header (total bytes, element count),
/// the elements, each followed by its length backwards, and an end byte.
fn listpack_fields(lp: &[u8]) -> Result<HashMap<String, String>, DumpError> {
    let mut at = 6;
    if lp.len() < at + 1 {
        return Err(DumpError::Truncated);
    }
    let mut fields = HashMap::with_capacity(usize::from(u16::from_le_bytes([lp[4], lp[5]])) / 2);
    let mut pending_field: Option<String> = None;
    loop {
        let Some(&first) = lp.get(at) else {
            return Err(DumpError::Truncated);
        };
        if first == 0xff {
            break;
        }
        let (element, size) = listpack_element(&lp[at..])?;
        at += size + backlen_size(size);
        match pending_field.take() {
            None => pending_field = Some(element),
            Some(field) => {
                fields.insert(field, element);
            }
        }
    }
    match pending_field {
        None => Ok(fields),
        Some(_) => Err(DumpError::OddElements),
    }
}

/// One element at the start of `bytes`, as Redis gives it back (an integer in decimal), and the
/// size of its encoding and data (without the length backwards after it).
fn listpack_element(bytes: &[u8]) -> Result<(String, usize), DumpError> {
    let first = bytes[0];
    let get = |range: std::ops::Range<usize>| bytes.get(range).ok_or(DumpError::Truncated);
    let string = |start: usize, len: usize| -> Result<(String, usize), DumpError> {
        let data = get(start..start + len)?;
        let text = std::str::from_utf8(data).map_err(|_| DumpError::NotUtf8)?;
        Ok((text.to_owned(), start + len))
    };
    let int = |value: i64, size: usize| Ok((value.to_string(), size));
    match first {
        b if b & 0x80 == 0 => int(i64::from(b & 0x7f), 1),
        b if b & 0xc0 == 0x80 => string(1, usize::from(b & 0x3f)),
        b if b & 0xe0 == 0xc0 => {
            let raw = (i64::from(b & 0x1f) << 8) | i64::from(get(1..2)?[0]);
            int(if raw >= 1 << 12 { raw - (1 << 13) } else { raw }, 2)
        }
        0xf1 => int(i64::from(i16::from_le_bytes(get(1..3)?.try_into().expect("2 bytes"))), 3),
        0xf2 => {
            let b = get(1..4)?;
            // Sign-extended from 24 bits: the three bytes in the top of an i32, shifted down.
            int(i64::from(i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8), 4)
        }
        0xf3 => int(i64::from(i32::from_le_bytes(get(1..5)?.try_into().expect("4 bytes"))), 5),
        0xf4 => int(i64::from_le_bytes(get(1..9)?.try_into().expect("8 bytes")), 9),
        b if b & 0xf0 == 0xe0 => string(2, (usize::from(b & 0x0f) << 8) | usize::from(get(1..2)?[0])),
        0xf0 => {
            let len = u32::from_le_bytes(get(1..5)?.try_into().expect("4 bytes"));
            string(5, usize::try_from(len).map_err(|_| DumpError::BadLength)?)
        }
        other => Err(DumpError::UnknownEncoding(other)),
    }
}

/// How many bytes the length backwards of an element of `size` bytes takes (7 bits a byte).
fn backlen_size(size: usize) -> usize {
    match size {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(hash_fields(b""), Err(DumpError::Truncated));
        assert_eq!(hash_fields(&[0; 10]), Err(DumpError::Truncated));
        assert_eq!(hash_fields(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Err(DumpError::UnknownType(2)));
        // A listpack type whose string claims more bytes than there are.
        let mut bad = vec![RDB_TYPE_HASH_LISTPACK, 0x3f];
        bad.extend([0; FOOTER]);
        assert_eq!(hash_fields(&bad), Err(DumpError::Truncated));
        for cut in 0..40 {
            let mut lp = vec![RDB_TYPE_HASH_LISTPACK, 20];
            lp.extend([20, 0, 0, 0, 2, 0, 0x81, b'a', 2, 0xf4, 1, 2, 3, 4, 5, 6, 7, 8, 10, 0xff]);
            lp.truncate(cut.min(lp.len()));
            lp.extend([0; FOOTER]);
            let _ = hash_fields(&lp);
        }
    }

    #[test]
    fn an_absurd_decompressed_length_is_refused_before_it_is_allocated() {
        // A listpack string, LZF-encoded (0xc3): 1 compressed byte, 2^40 bytes once decompressed.
        let mut lzf = vec![RDB_TYPE_HASH_LISTPACK, 0xc3, 1, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        lzf.extend([0; FOOTER]);
        assert_eq!(hash_fields(&lzf), Err(DumpError::BadLength));
    }

    #[test]
    fn backlen_sizes_follow_the_listpack_rule() {
        assert_eq!(
            [1, 127, 128, 16382, 16383, 2097150, 2097151].map(backlen_size),
            [1, 1, 2, 2, 3, 3, 4]
        );
    }
}
