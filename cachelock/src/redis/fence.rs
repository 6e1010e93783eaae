//! Where the fencing counter of a lock key lives.
//!
//! The claim script bumps a counter in the same call that stores the lock (one round trip),
//! so the counter must be a key the script declares, and on Redis Cluster every key of one
//! script must hash to one slot. A counter per lock key would leave one key behind for every
//! lock ever taken; instead there is one counter per **slot**:
//!
//! - standalone Redis: one counter, `<prefix>cachelock-fence`;
//! - Redis Cluster: `<prefix>cachelock-fence:{<tag>}`, where `<tag>` is a short string chosen
//!   so that the counter hashes to the slot of the lock key (whatever hash tag the lock key
//!   itself carries). At most 16,384 counters exist, however many locks are taken.
//!
//! If the prefix itself contains `{`, the counter key could hash elsewhere; then the counter
//! is `cachelock-fence:{<tag>}` without the prefix, whose slot is the tag's by construction.

use std::sync::OnceLock;

const SLOTS: usize = 16_384;

/// CRC16-CCITT (XModem), as Redis Cluster uses for key slots.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The Redis Cluster slot of `key`: the hash of its hash tag (the part between the first `{`
/// and the first `}` after it, if not empty), or of the whole key.
pub(crate) fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = bytes
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &bytes[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(bytes);
    crc16(hashed) % SLOTS as u16
}

/// A short tag for every slot: `tags()[s]` hashes to slot `s`.
fn tags() -> &'static [u32] {
    static TAGS: OnceLock<Vec<u32>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![u32::MAX; SLOTS];
        let mut missing = SLOTS;
        let mut n: u32 = 0;
        // Every slot is hit after about 170,000 candidates (a coupon collector over 16,384
        // slots); the bound only guards the loop.
        while missing > 0 && n < 50_000_000 {
            let slot = usize::from(crc16(tag_text(n).as_bytes()) % SLOTS as u16);
            if tags[slot] == u32::MAX {
                tags[slot] = n;
                missing -= 1;
            }
            n += 1;
        }
        tags
    })
}

fn tag_text(n: u32) -> String {
    format!("{n:x}")
}

/// The counter key for the (prefixed) lock key `key`.
pub(crate) fn counter_key(key: &str, prefix: &str, cluster: bool) -> String {
    if !cluster {
        return format!("{prefix}cachelock-fence");
    }
    let slot = slot(key);
    let tag = tag_text(tags()[usize::from(slot)]);
    let prefixed = format!("{prefix}cachelock-fence:{{{tag}}}");
    if self::slot(&prefixed) == slot {
        prefixed
    } else {
        format!("cachelock-fence:{{{tag}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_redis_cluster_spec() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("user1000"));
        assert_eq!(slot("foo{}{bar}"), slot("foo{}{bar}")); // empty tag: whole key
        assert_ne!(slot("foo{}{bar}"), slot("bar"));
        assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
    }

    #[test]
    fn every_slot_has_a_tag_and_the_counter_shares_the_lock_keys_slot() {
        assert!(tags().iter().all(|&t| t != u32::MAX));
        for key in [
            "cachelock:job",
            "cachelock:{tenant-1}:job",
            "a{",
            "}{",
            "{}",
            "x{y}z{w}",
            "cachelock:日本",
        ] {
            for prefix in ["", "app:", "{app}:", "a{b", "}"] {
                let full = format!("{prefix}{key}");
                let counter = counter_key(&full, prefix, true);
                assert_eq!(slot(&counter), slot(&full), "{full} / {counter}");
            }
        }
        assert_eq!(counter_key("k", "p:", false), "p:cachelock-fence");
    }
}
