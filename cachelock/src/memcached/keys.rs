//! Lock keys as memcached keys.
//!
//! A memcached key is at most 250 bytes of printable ASCII without spaces; a lock key may be
//! 1 KiB of anything (plus the prefixes). So:
//!
//! - a key of at most 250 bytes, every byte printable ASCII (`!` to `~`) and none of them
//!   `#`, is sent **as it is** (`cachelock:nightly-report` stays `cachelock:nightly-report`);
//! - any other key is sent as `<head>#<sha1>`: `<head>` is its first 200 bytes with every
//!   byte outside `!`..`~` (and `#`) replaced by `_`, for a human reading `lru_crawler
//!   metadump`; `<sha1>` is the SHA-1 of the whole key in 40 hex digits.
//!
//! The two forms cannot meet: a key sent as it is never contains `#`, a hashed one always
//! does. Two hashed keys meet only if their SHA-1s do; even a deliberate collision would only
//! make two locks exclude each other, never let two holders in: the owner checks compare the
//! token stored in the value.

use std::borrow::Cow;

/// The longest key memcached accepts, in bytes.
pub(crate) const MAX_KEY: usize = 250;

/// How much of a hashed key is kept readable.
const HEAD: usize = 200;

fn plain_byte(byte: u8) -> bool {
    (b'!'..=b'~').contains(&byte) && byte != b'#'
}

/// The memcached key for the (prefixed) lock key `key`.
pub(crate) fn memcached_key(key: &str) -> Cow<'_, str> {
    let bytes = key.as_bytes();
    if !bytes.is_empty() && bytes.len() <= MAX_KEY && bytes.iter().all(|&b| plain_byte(b)) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(HEAD + 41);
    out.extend(
        bytes
            .iter()
            .take(HEAD)
            .map(|&b| if plain_byte(b) { char::from(b) } else { '_' }),
    );
    out.push('#');
    out.push_str(&sha1_smol::Sha1::from(bytes).digest().to_string());
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_plain_keys_are_kept() {
        assert_eq!(
            memcached_key("cachelock:nightly-report"),
            "cachelock:nightly-report"
        );
        let k = "k".repeat(MAX_KEY);
        assert_eq!(memcached_key(&k), k);
    }

    #[test]
    fn other_keys_are_hashed_into_valid_distinct_keys() {
        let long = "k".repeat(MAX_KEY + 1);
        let longer = "k".repeat(1100);
        let keys = [
            "",
            "with space",
            "tab\tand\nnewline\r\n",
            "日本語のキー",
            "hash#sign",
            long.as_str(),
            longer.as_str(),
            "\u{0}",
        ];
        let mapped: Vec<String> = keys.iter().map(|k| memcached_key(k).into_owned()).collect();
        for (key, m) in keys.iter().zip(&mapped) {
            assert!(m.len() <= MAX_KEY, "{m}");
            assert!(m.bytes().all(|b| (b'!'..=b'~').contains(&b)), "{m}");
            assert!(m.contains('#'), "{key:?} -> {m}");
        }
        let mut unique = mapped.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), mapped.len());
        // The readable head, and a stable hash.
        assert!(memcached_key("with space").starts_with("with_space#"));
        assert_eq!(memcached_key("with space"), memcached_key("with space"));
        assert_ne!(memcached_key("with space"), memcached_key("with_space"));
    }
}
