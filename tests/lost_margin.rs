//! A lock that cannot be renewed is declared lost a margin before its TTL runs out
//! (`Lock::lost_margin`), so the holder hears of it while the store still holds the key:
//! before anyone else can be granted it.

use std::time::{Duration, Instant};

use cachelock::{Lock, MemoryCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_is_told_while_the_store_still_holds_the_key() {
    let cache = MemoryCache::new();
    let ttl = Duration::from_secs(3);
    let lock = Lock::new("margin")
        .cache(cache.clone())
        .ttl(ttl)
        .renew(false)
        .lost_margin(Duration::from_secs(1));
    let taken = Instant::now();
    let guard = lock.try_acquire_async().await.expect("free");
    assert!(!guard.is_lost());
    guard.lost().await;
    assert!(guard.is_lost());
    // Told: and the key is still held in the store (its TTL has about a second left), so
    // nobody else has been granted it yet.
    assert!(
        lock.try_acquire_async().await.unwrap_err().is_locked(),
        "told {:?} after taking a {ttl:?} lock: the store had already let it go",
        taken.elapsed()
    );
    drop(guard);
}

#[test]
fn a_margin_as_long_as_the_ttl_is_refused() {
    let error = Lock::new("margin-too-long")
        .cache(MemoryCache::new())
        .ttl(Duration::from_secs(1))
        .lost_margin(Duration::from_secs(1))
        .try_acquire()
        .unwrap_err();
    assert!(
        matches!(error, cachelock::Error::InvalidSetting { ref reason, .. } if reason.contains("lost_margin")),
        "{error}"
    );
}

#[test]
fn a_zero_margin_waits_for_the_whole_ttl() {
    let cache = MemoryCache::new();
    let guard = Lock::new("margin-zero")
        .cache(cache)
        .ttl(Duration::from_secs(30))
        .renew(false)
        .lost_margin(Duration::ZERO)
        .try_acquire()
        .expect("free");
    assert!(!guard.is_lost());
}
