//! FNV-1a, the one stable digest Celeriac uses where the same input must give the same number
//! in every process and version: a partition key's shard, a unique task's lock name, an
//! idempotent request's fingerprint. Not for security (see `signing.rs` for that).

/// FNV-1a's usual 64-bit offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes`, from `start` (usually [`FNV_OFFSET`]; another start gives a second,
/// independent digest of the same bytes).
pub fn fnv1a(start: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(start, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_fnv1a() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), FNV_OFFSET);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
