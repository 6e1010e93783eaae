//! `#[once]` checks literal durations at compile time against its own copy of
//! `cachelock::MAX_TTL`: the macro crate cannot depend on `cachelock`, which depends on it.
//! This test compiles that copy here, from the macro crate's source, and compares it with
//! the original, so the two cannot drift apart.

use cachelock::{once, Error, MemoryCache};

mod macro_crate {
    include!("../cachelock-macros/src/max_ttl.rs");
}

#[test]
fn the_macro_crate_copy_of_max_ttl_is_cachelock_max_ttl() {
    assert_eq!(
        u128::from(macro_crate::MAX_TTL_NANOS),
        cachelock::MAX_TTL.as_nanos()
    );
}

#[test]
fn the_macro_crate_error_message_says_max_ttl() {
    const DAY: u64 = 24 * 60 * 60;
    let max = cachelock::MAX_TTL;
    assert!(
        max.subsec_nanos() == 0 && max.as_secs().is_multiple_of(DAY),
        "{max:?}"
    );
    assert_eq!(
        macro_crate::MAX_TTL_TEXT,
        format!("{} days", max.as_secs() / DAY)
    );
}

/// The longest literal TTL the macro accepts (`ttl = "31d"` is a compile error, see
/// `tests/ui/ttl_too_long.rs`).
#[once(key = "longest-ttl", cache = cache, ttl = "30d", raise_if_locked = true)]
fn longest_ttl(cache: &MemoryCache) -> Result<(), Error> {
    Ok(())
}

#[test]
fn the_longest_literal_ttl_is_accepted_at_run_time() {
    longest_ttl(&MemoryCache::new()).unwrap();
}
