//! Process-wide settings are set once, before the first lock. (Own test binary: own process.)

use std::time::Duration;

use cachelock::{set_default_cache, set_key_prefix, Error, Lock, LockAdmin, MemoryCache};

#[test]
fn default_cache_and_prefix_are_set_once_and_then_used_by_every_lock() {
    // Building a lock does not fix the default; only taking one does.
    let built_early = Lock::new("report").ttl(Duration::from_secs(5));

    let mine = MemoryCache::new();
    set_key_prefix("app:").unwrap();
    set_default_cache(mine.clone()).unwrap();

    let err = set_default_cache(MemoryCache::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AlreadyConfigured {
                what: "default cache"
            }
        ),
        "{err:?}"
    );
    let err = set_key_prefix("other:").unwrap_err();
    assert!(
        matches!(err, Error::AlreadyConfigured { what: "key prefix" }),
        "{err:?}"
    );
    assert!(err.to_string().contains("before the first lock"), "{err}");

    let guard = built_early.try_acquire().unwrap();
    assert_eq!(guard.key(), "app:report");
    assert!(
        mine.holder("app:report").unwrap().is_some(),
        "the lock lives in the configured cache"
    );
    assert!(cachelock::default_cache()
        .admin()
        .expect("the default memory store has admin operations")
        .holder("app:report")
        .unwrap()
        .is_some());
}
