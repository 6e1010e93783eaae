//! Lock file names: a key (any string up to ~1 KiB) as a file name, and back.
//!
//! - Bytes in `A-Z a-z 0-9 - _ . : @ + = ,` stand for themselves; every other byte
//!   (`/`, `%`, space, `~`, control characters, non-ASCII UTF-8) is written `%XX` (upper-case
//!   hex), and so is a leading `.` (no hidden files, never `.` or `..`). The name is the
//!   encoded key + the kind's suffix (`.lock` for a key, `.tree` for a tree lock space), so
//!   `cachelock:nightly-report` is `cachelock:nightly-report.lock`. Decoding is the inverse.
//! - An encoded key longer than [`MAX_ENCODED`] bytes (a file name has at most 255) is cut
//!   to its first ~120 bytes and followed by `~` and 32 hex digits of a 128-bit FNV-1a hash
//!   of the whole key: `~` never appears in an encoded key, so such a name is never read
//!   as an encoded key. The full key is stored inside the file, which is where listing reads
//!   it. Two keys whose hashed names collide share a file: the file holds one key's lock at a
//!   time, so the other key is refused while it is held (never granted twice): a collision
//!   costs contention, never safety.
//!
//! A case-insensitive file system (macOS by default) folds `Job` and `job` into one file: the
//! same rule applies (the full key in the file tells them apart; one waits for the other).

use std::borrow::Cow;

/// Encoded keys longer than this are hashed (with the suffix, names stay under 255 bytes).
pub(crate) const MAX_ENCODED: usize = 200;
/// How much of a long key's encoding a hashed name keeps, for people reading the directory.
const KEPT: usize = 120;

/// The suffix of a plain key's lock file.
pub(crate) const LOCK_SUFFIX: &str = ".lock";
/// The suffix of a tree lock space's file.
pub(crate) const TREE_SUFFIX: &str = ".tree";

/// The bytes that stand for themselves in a file name, as a table (one load per byte).
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b':' | b'@' | b'+' | b'=' | b',');
        byte += 1;
    }
    table
};

fn plain(byte: u8) -> bool {
    PLAIN[usize::from(byte)]
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The file name of `key`'s lock.
pub(crate) fn lock_name(key: &str) -> String {
    let mut name = encode_with_room(key, LOCK_SUFFIX.len());
    name.push_str(LOCK_SUFFIX);
    name
}

/// The file name of the tree lock space `space`.
pub(crate) fn tree_name(space: &str) -> String {
    let mut name = encode(space);
    name.push_str(TREE_SUFFIX);
    name
}

/// `key` as a file name without its suffix.
pub(crate) fn encode(key: &str) -> String {
    encode_with_room(key, 0)
}

/// [`encode`], with room for `room` more bytes (the suffix) in the string.
fn encode_with_room(key: &str, room: usize) -> String {
    let plain_key = key.bytes().all(plain) && !key.starts_with('.');
    if plain_key && key.len() <= MAX_ENCODED {
        let mut out = String::with_capacity(key.len() + room);
        out.push_str(key);
        return out;
    }
    let mut out = String::with_capacity(key.len() + 8 + room);
    for (i, &byte) in key.as_bytes().iter().enumerate() {
        if plain(byte) && !(i == 0 && byte == b'.') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    if out.len() > MAX_ENCODED {
        // Never cut inside a `%XX` (every `%` of an encoding starts one).
        let bytes = out.as_bytes();
        let mut cut = KEPT;
        while bytes[cut - 1] == b'%' || bytes[cut - 2] == b'%' {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('~');
        out.push_str(&format!("{:032x}", fnv1a128(key.as_bytes())));
    }
    out
}

/// The key a file name (without its suffix) stands for; `None` for a hashed name (the key is
/// in the file) or a name that no key encodes to.
pub(crate) fn decode(name: &str) -> Option<String> {
    if is_hashed(name) {
        return None;
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let key = String::from_utf8(out).ok()?;
    (encode(&key) == name).then_some(key)
}

/// Whether a name (without its suffix) is a hashed one.
pub(crate) fn is_hashed(name: &str) -> bool {
    name.contains('~')
}

/// 128-bit FNV-1a: stable across versions, platforms and processes (unlike std's hashers),
/// which is all a file name needs (a collision only shares a file, see the module docs).
fn fnv1a128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes.iter().fold(OFFSET, |hash, &byte| {
        (hash ^ u128::from(byte)).wrapping_mul(PRIME)
    })
}

/// Percent-escapes `%`, space and control characters: a field of a lock file's record
/// (a key, a path, an owner value) on one line, splittable at spaces.
pub(crate) fn escape_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        if ch == '%' || ch == ' ' || ch.is_control() {
            let mut buf = [0u8; 4];
            for &byte in ch.encode_utf8(&mut buf).as_bytes() {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// The inverse of [`escape_field`]; `None` if `field` is not an escaped field.
pub(crate) fn unescape_field(field: &str) -> Option<Cow<'_, str>> {
    if !field.as_bytes().contains(&b'%') {
        return Some(Cow::Borrowed(field));
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = field.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_names_stay_plain_and_short() {
        let long = "k".repeat(1024);
        let long_odd = "é/".repeat(400);
        for key in [
            "cachelock:nightly-report",
            "",
            ".",
            "..",
            ".hidden",
            "a/b/../c",
            "100% sure ~ yes",
            "tab\there\nnewline",
            "日本語のキー",
            "UPPER lower",
            long.as_str(),
            long_odd.as_str(),
        ] {
            let name = encode(key);
            assert!(!name.is_empty() || key.is_empty());
            assert!(name.len() + LOCK_SUFFIX.len() < 255, "{} bytes", name.len());
            assert!(!name.starts_with('.'), "{name}");
            assert!(!name.contains('/'), "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_graphic()), "{name}");
            if name.len() <= MAX_ENCODED && !is_hashed(&name) {
                assert_eq!(decode(&name).as_deref(), Some(key), "{name}");
            } else {
                assert!(is_hashed(&name), "{name}");
                assert_eq!(decode(&name), None);
            }
        }
        assert_eq!(encode("cachelock:job-1"), "cachelock:job-1");
        assert_eq!(encode(".a/b"), "%2Ea%2Fb");
        assert_eq!(encode("a.b"), "a.b");
    }

    #[test]
    fn long_keys_hash_to_distinct_stable_names() {
        let a = format!("{}a", "x".repeat(500));
        let b = format!("{}b", "x".repeat(500));
        assert_ne!(encode(&a), encode(&b));
        assert_eq!(encode(&a), encode(&a.clone()));
        // A stable function of the key: the same name in every process and version.
        assert_eq!(
            format!("{:032x}", fnv1a128(b"")),
            "6c62272e07bb014262b821756295c58d"
        );
        // A cut never splits an escape.
        let escaped = "/".repeat(300);
        let name = encode(&escaped);
        let (kept, _) = name.split_once('~').unwrap();
        assert!(
            kept.len() % 3 == 0 && kept.chars().all(|c| "%2F".contains(c)),
            "{kept}"
        );
    }

    #[test]
    fn names_no_key_encodes_to_are_not_decoded() {
        assert_eq!(decode("%2"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%61"), None); // `a` is written `a`, not `%61`
        assert_eq!(decode(".x"), None);
        assert_eq!(decode("%FF"), None); // not UTF-8
    }

    #[test]
    fn fields_round_trip_on_one_line_without_spaces() {
        for value in ["plain", "", "a b|c%d", "line\nbreak\r", "tab\t", "日本"] {
            let field = escape_field(value);
            assert!(!field.contains(' ') && !field.contains('\n'), "{field}");
            assert_eq!(unescape_field(&field).as_deref(), Some(value));
        }
        assert_eq!(unescape_field("%"), None);
    }
}
