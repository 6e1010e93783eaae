//! The formatted keys of `#[once]`: readable for plain values, escaped so that two different
//! argument values never give the same key (proven by decoding every key back).

mod common;

use cachelock::once;
use common::RecordingCache;
use proptest::prelude::*;

#[once(key = "<a>-<b>", cache = cache)]
fn two(a: &str, b: &str, cache: &RecordingCache) -> Option<()> {
    Some(())
}

#[once(key = "job:<a>/<b>=<c>!", cache = cache)]
fn three(a: &str, b: &str, c: &str, cache: &RecordingCache) -> Option<()> {
    Some(())
}

#[once(key = "<<<a>>>", cache = cache)]
fn brackets(a: &str, cache: &RecordingCache) -> Option<()> {
    Some(())
}

/// The key `f` claims (prefix removed).
fn key_of(cache: &RecordingCache, f: impl FnOnce(&RecordingCache) -> Option<()>) -> String {
    assert_eq!(f(cache), Some(()));
    let keys = cache.take();
    assert_eq!(keys.len(), 1);
    keys[0]
        .strip_prefix("cachelock:")
        .expect("the process prefix")
        .to_owned()
}

/// Reads one escaped value up to (not including) the first unescaped `stop` character.
fn read_value(key: &str, stop: Option<char>) -> (String, &str) {
    let mut bytes = Vec::new();
    let mut rest = key;
    while let Some(c) = rest.chars().next() {
        if Some(c) == stop {
            break;
        }
        if c == '%' {
            bytes.push(u8::from_str_radix(&rest[1..3], 16).expect("two hex digits"));
            rest = &rest[3..];
        } else {
            let mut buf = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            rest = &rest[c.len_utf8()..];
        }
    }
    (String::from_utf8(bytes).expect("UTF-8"), rest)
}

/// The documented decoding of `"<a>-<b>"`.
fn decode_two(key: &str) -> (String, String) {
    let (a, rest) = read_value(key, Some('-'));
    let rest = rest.strip_prefix('-').expect("the separator");
    let (b, rest) = read_value(rest, None);
    assert!(rest.is_empty());
    (a, b)
}

#[test]
fn plain_values_stay_readable() {
    let cache = RecordingCache::new();
    assert_eq!(key_of(&cache, |c| two("report", "42", c)), "report-42");
    assert_eq!(
        key_of(&cache, |c| three("x", "1.5", "a:b", c)),
        "job:x/1.5=a:b!"
    );
    assert_eq!(key_of(&cache, |c| brackets("v", c)), "<v>");
}

#[test]
fn separators_and_percent_in_values_are_escaped() {
    let cache = RecordingCache::new();
    let first = key_of(&cache, |c| two("x-y", "z", c));
    let second = key_of(&cache, |c| two("x", "y-z", c));
    assert_eq!(first, "x%2Dy-z");
    assert_eq!(second, "x-y%2Dz");
    assert_ne!(first, second);
    assert_eq!(key_of(&cache, |c| two("100%", "-", c)), "100%25-%2D");
    assert_eq!(
        key_of(&cache, |c| three("a/b", "c=d", "e!", c)),
        "job:a%2Fb/c%3Dd=e!!"
    );
    // Multi-byte characters are escaped byte by byte.
    #[once(key = "<a>→<b>", cache = cache)]
    fn arrow(a: &str, b: &str, cache: &RecordingCache) -> Option<()> {
        Some(())
    }
    assert_eq!(key_of(&cache, |c| arrow("→", "", c)), "%E2%86%92→");
}

fn tricky() -> impl Strategy<Value = String> {
    // Characters that meet the escaping, plus anything at all.
    prop_oneof![
        proptest::collection::vec(
            prop::sample::select(vec!['-', '%', '2', 'D', 'a', 'é']),
            0..8
        )
        .prop_map(|chars| chars.into_iter().collect()),
        ".{0,12}",
    ]
}

proptest! {
    #[test]
    fn keys_decode_back_to_their_arguments(a in tricky(), b in tricky()) {
        let cache = RecordingCache::new();
        let key = key_of(&cache, |c| two(&a, &b, c));
        prop_assert_eq!(decode_two(&key), (a, b));
    }

    #[test]
    fn different_arguments_give_different_keys(
        a1 in tricky(), b1 in tricky(), a2 in tricky(), b2 in tricky()
    ) {
        prop_assume!((&a1, &b1) != (&a2, &b2));
        let cache = RecordingCache::new();
        let first = key_of(&cache, |c| two(&a1, &b1, c));
        let second = key_of(&cache, |c| two(&a2, &b2, c));
        prop_assert_ne!(first, second);
    }
}
