//! `#[once]`'s lease options: `hold_at_least`, `max_hold`, `renew`, on memory and on a real
//! redis-server. Timing only bounds from the safe side: "still held" inside a window,
//! "free" awaited with a generous limit.

use std::time::{Duration, Instant};

use cachelock::{once, Lock, LockStore, MemoryCache};
use cachelock_testkit::eventually;

fn held<C: LockStore + Clone + 'static>(cache: &C, key: &str) -> bool {
    match Lock::new(key).cache(cache.clone()).try_acquire() {
        Ok(_) => false,
        Err(e) if e.is_locked() => true,
        Err(e) => panic!("{e}"),
    }
}

#[once(key = "digest-<id>", cache = cache, hold_at_least = "1500ms")]
fn digest<C: LockStore + Clone + 'static>(cache: &C, id: u32) -> Option<u32> {
    Some(id)
}

/// A quick body with `hold_at_least` runs once per window: a second call inside it is
/// skipped, one after it runs.
fn hold_at_least_runs_once_per_window<C: LockStore + Clone + 'static>(cache: C) {
    let window = Duration::from_millis(1500);
    let start = Instant::now();
    assert_eq!(digest(&cache, 1), Some(1));
    assert!(held(&cache, "digest-1"), "kept after the body ended");
    assert_eq!(digest(&cache, 1), None, "a second run inside the window");
    assert_eq!(digest(&cache, 2), Some(2), "other keys are not held");
    let mut second = None;
    eventually("a run after the window", || {
        second = digest(&cache, 1);
        second.is_some()
    });
    assert!(
        start.elapsed() >= window,
        "ran again after {:?}",
        start.elapsed()
    );
}

#[test]
fn memory_hold_at_least_runs_once_per_window() {
    hold_at_least_runs_once_per_window(MemoryCache::new());
}

#[cfg(feature = "redis")]
#[test]
fn redis_hold_at_least_runs_once_per_window() {
    let server = cachelock_testkit::RedisServer::start();
    let cache = cachelock::redis::RedisCache::from_url(&server.url()).expect("valid url");
    hold_at_least_runs_once_per_window(cache);
}

#[once(key = "runaway", cache = cache, ttl = "300ms", max_hold = "1200ms")]
fn runaway<C: LockStore + Clone + 'static>(cache: &C) -> Option<bool> {
    // Renewed past its TTL, then let go at max_hold while the body still runs.
    std::thread::sleep(Duration::from_millis(450));
    let still_held_after_the_ttl = held(cache, "runaway");
    eventually("max_hold frees the key", || !held(cache, "runaway"));
    Some(still_held_after_the_ttl)
}

#[once(key = "unrenewed", cache = cache, ttl = "200ms", renew = false)]
fn unrenewed<C: LockStore + Clone + 'static>(cache: &C) -> Option<()> {
    eventually("the unrenewed lock expires under the body", || {
        !held(cache, "unrenewed")
    });
    Some(())
}

#[once(key = "long-body", cache = cache, ttl = "600ms")]
fn long_body<C: LockStore + Clone + 'static>(cache: &C) -> Option<()> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3000) {
        assert!(held(cache, "long-body"), "lost after {:?}", start.elapsed());
        std::thread::sleep(Duration::from_millis(150));
    }
    Some(())
}

#[test]
fn max_hold_bounds_a_runaway_body() {
    assert_eq!(runaway(&MemoryCache::new()), Some(true));
}

#[test]
fn renew_false_lets_the_lock_expire_under_the_body() {
    assert_eq!(unrenewed(&MemoryCache::new()), Some(()));
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use cachelock::redis::RedisCache;
    use cachelock_testkit::RedisServer;

    fn cache(server: &RedisServer) -> RedisCache {
        RedisCache::from_url(&server.url()).expect("valid url")
    }

    #[test]
    fn redis_max_hold_bounds_a_runaway_body() {
        let server = RedisServer::start();
        assert_eq!(runaway(&cache(&server)), Some(true));
    }

    #[test]
    fn redis_renew_false_lets_the_lock_expire_under_the_body() {
        let server = RedisServer::start();
        assert_eq!(unrenewed(&cache(&server)), Some(()));
    }

    #[test]
    fn a_redis_once_body_five_times_longer_than_its_ttl_keeps_the_lock() {
        let server = RedisServer::start();
        let cache = cache(&server);
        assert_eq!(long_body(&cache), Some(()));
        assert!(!held(&cache, "long-body"), "released after the body");
    }
}

#[once(key = "async-digest", cache = cache, hold_at_least = "10m")]
async fn async_digest(cache: &MemoryCache) -> Option<()> {
    Some(())
}

#[tokio::test]
async fn async_hold_at_least_keeps_the_key() {
    let cache = MemoryCache::new();
    assert_eq!(async_digest(&cache).await, Some(()));
    assert_eq!(async_digest(&cache).await, None, "inside the window");
    let ttl = Lock::new("async-digest")
        .cache(cache.clone())
        .holder()
        .unwrap()
        .expect("kept")
        .ttl
        .expect("a TTL");
    assert!(ttl <= Duration::from_secs(600), "{ttl:?}");
}
