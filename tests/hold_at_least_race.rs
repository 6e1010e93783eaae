//! `hold_at_least` against a renewal that is under way while the guard releases: whatever
//! order the two extends land in, the key ends with the hold window's TTL, never the full
//! TTL the renewal asked for (too long when the hold is shorter than the TTL, too short when
//! it is longer). Memory and a real redis-server.
//!
//! A wrapper cache stops the renewer inside its first extend until the guard has released,
//! so the renewal's extend lands after the release's shortening: the losing order. Its own
//! binary, because it holds the process-wide renewer thread for that moment.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cachelock::{Cache, CacheResult, Lock, MemoryCache};
use cachelock_testkit::eventually;

struct Shared {
    /// Set once the first renewal has been stopped.
    armed: AtomicBool,
    started: Mutex<Option<Sender<()>>>,
    go: (Mutex<bool>, Condvar),
    /// Extends that have returned, from any thread.
    extends: AtomicUsize,
}

/// Forwards to `inner`; the first extend made by the renewer thread waits for `go`.
#[derive(Clone)]
struct Crossing<C> {
    inner: C,
    shared: Arc<Shared>,
}

impl<C: Cache> Crossing<C> {
    fn new(inner: C) -> (Self, Receiver<()>) {
        let (tx, rx) = channel();
        let shared = Arc::new(Shared {
            armed: AtomicBool::new(false),
            started: Mutex::new(Some(tx)),
            go: (Mutex::new(false), Condvar::new()),
            extends: AtomicUsize::new(0),
        });
        (Crossing { inner, shared }, rx)
    }

    fn let_renewal_through(&self) {
        let (go, condvar) = &self.shared.go;
        *go.lock().unwrap() = true;
        condvar.notify_all();
    }

    fn extends(&self) -> usize {
        self.shared.extends.load(Ordering::SeqCst)
    }
}

impl<C: Cache> Cache for Crossing<C> {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.inner.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.inner.delete(key)
    }
    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        self.inner.claim(key, token, ttl)
    }
    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        self.inner.release(key, token)
    }
    fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        let renewer = std::thread::current().name() == Some("cachelock-renew");
        if renewer && !self.shared.armed.swap(true, Ordering::SeqCst) {
            if let Some(started) = self.shared.started.lock().unwrap().take() {
                let _ = started.send(());
            }
            let (go, condvar) = &self.shared.go;
            let mut go = go.lock().unwrap();
            while !*go {
                go = condvar.wait(go).unwrap();
            }
        }
        let outcome = self.inner.extend(key, token, ttl);
        self.shared.extends.fetch_add(1, Ordering::SeqCst);
        outcome
    }
    fn get_with_ttl(&self, key: &str) -> CacheResult<Option<(String, Option<Duration>)>> {
        self.inner.get_with_ttl(key)
    }
}

/// Takes `key` with `ttl` and `hold`, releases while the first renewal is under way, lets
/// the renewal land last, and returns the key's TTL once the renewer is done with it.
fn ttl_after_a_crossed_release<C: Cache + Clone + 'static>(
    inner: C,
    key: &str,
    ttl: Duration,
    hold: Duration,
) -> Duration {
    let (cache, renewal_started) = Crossing::new(inner);
    let guard = Lock::new(key)
        .cache(cache.clone())
        .ttl(ttl)
        .hold_at_least(hold)
        .try_acquire()
        .expect("free");
    renewal_started
        .recv_timeout(Duration::from_secs(30))
        .expect("the renewer starts a renewal");
    guard.release().expect("the release shortens the TTL");
    assert_eq!(cache.extends(), 1, "only the release's extend has landed");
    cache.let_renewal_through();
    // The renewal's extend, then the renewer setting the hold window's TTL again.
    eventually(
        "the renewer sets the hold window TTL again after its crossing renewal",
        || cache.extends() >= 3,
    );
    let (_, left) = cache
        .get_with_ttl(&format!("cachelock:{key}"))
        .expect("get_with_ttl")
        .expect("the key is kept for the hold window");
    left.expect("the kept key has a TTL")
}

fn hold_shorter_than_the_ttl_is_not_extended_by_a_crossing_renewal<C>(inner: C)
where
    C: Cache + Clone + 'static,
{
    let (ttl, hold) = (Duration::from_secs(3), Duration::from_millis(2_500));
    let left = ttl_after_a_crossed_release(inner, "crossed-short", ttl, hold);
    assert!(
        left <= hold,
        "the key's TTL {left:?} goes past the hold window {hold:?}"
    );
}

fn hold_longer_than_the_ttl_is_not_cut_short_by_a_crossing_renewal<C>(inner: C)
where
    C: Cache + Clone + 'static,
{
    let (ttl, hold) = (Duration::from_millis(900), Duration::from_secs(20));
    let left = ttl_after_a_crossed_release(inner, "crossed-long", ttl, hold);
    assert!(left <= hold, "{left:?} past the hold window {hold:?}");
    assert!(
        left > ttl,
        "the renewal's TTL {ttl:?} replaced the hold window: {left:?} left"
    );
}

/// Without a crossing renewal: an early release leaves the key with at most the hold window.
fn an_early_release_keeps_the_key_no_longer_than_the_hold<C: Cache + Clone + 'static>(cache: C) {
    let (ttl, hold) = (Duration::from_secs(60), Duration::from_secs(20));
    let lock = Lock::new("plain-hold")
        .cache(cache.clone())
        .ttl(ttl)
        .hold_at_least(hold);
    lock.try_acquire().unwrap().release().unwrap();
    let left = lock.holder().unwrap().expect("kept").ttl.expect("a TTL");
    assert!(left <= hold, "{left:?} past the hold window {hold:?}");
    assert!(lock.try_acquire().unwrap_err().is_locked());
}

#[test]
fn memory_early_release_keeps_the_key_no_longer_than_the_hold() {
    an_early_release_keeps_the_key_no_longer_than_the_hold(MemoryCache::new());
}

#[test]
fn memory_hold_shorter_than_the_ttl_survives_a_crossing_renewal() {
    hold_shorter_than_the_ttl_is_not_extended_by_a_crossing_renewal(MemoryCache::new());
}

#[test]
fn memory_hold_longer_than_the_ttl_survives_a_crossing_renewal() {
    hold_longer_than_the_ttl_is_not_cut_short_by_a_crossing_renewal(MemoryCache::new());
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use cachelock::redis::RedisCache;
    use cachelock_testkit::RedisServer;

    #[test]
    fn redis_early_release_keeps_the_key_no_longer_than_the_hold() {
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        an_early_release_keeps_the_key_no_longer_than_the_hold(cache);
    }

    #[test]
    fn redis_hold_shorter_than_the_ttl_survives_a_crossing_renewal() {
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        hold_shorter_than_the_ttl_is_not_extended_by_a_crossing_renewal(cache);
    }

    #[test]
    fn redis_hold_longer_than_the_ttl_survives_a_crossing_renewal() {
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        hold_longer_than_the_ttl_is_not_cut_short_by_a_crossing_renewal(cache);
    }
}
