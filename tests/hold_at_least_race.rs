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

use cachelock::tree::TreeStore;
use cachelock::{
    BoxFuture, CacheResult, Claim, Claimed, Handle, Lock, LockAdmin, LockStore, MemoryCache,
};
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
///
/// With `handles` off it drops the handle `inner` returns with a claim, as a network store
/// (the guard then releases and extends by lookup); with it on, it forwards the handle (the
/// path a `MemoryCache` guard takes).
#[derive(Clone)]
struct Crossing<C> {
    inner: C,
    handles: bool,
    shared: Arc<Shared>,
}

impl<C: LockStore> Crossing<C> {
    fn new(inner: C, handles: bool) -> (Self, Receiver<()>) {
        let (tx, rx) = channel();
        let shared = Arc::new(Shared {
            armed: AtomicBool::new(false),
            started: Mutex::new(Some(tx)),
            go: (Mutex::new(false), Condvar::new()),
            extends: AtomicUsize::new(0),
        });
        (
            Crossing {
                inner,
                handles,
                shared,
            },
            rx,
        )
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

impl<C: LockStore> Crossing<C> {
    /// Holds the renewer's first extend until `go`.
    fn stop_first_renewal(&self) {
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
    }

    fn claimed(&self, won: CacheResult<Option<Claimed>>) -> CacheResult<Option<Claimed>> {
        if self.handles {
            won
        } else {
            won.map(|won| won.map(|won| Claimed::new(won.fence)))
        }
    }
}

impl<C: LockStore> LockStore for Crossing<C> {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.claimed(self.inner.claim(key, claim))
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        Box::pin(async move { self.claimed(self.inner.claim_async(key, claim).await) })
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        self.inner.release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        self.stop_first_renewal();
        let outcome = self.inner.extend(key, token, ttl, handle);
        self.shared.extends.fetch_add(1, Ordering::SeqCst);
        outcome
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        Box::pin(async move {
            let outcome = self.inner.extend_async(key, token, ttl, handle).await;
            self.shared.extends.fetch_add(1, Ordering::SeqCst);
            outcome
        })
    }
    fn wait_for_release(&self, key: &str, pause: Duration) {
        self.inner.wait_for_release(key, pause)
    }
    fn wait_for_release_async<'a>(&'a self, key: &'a str, pause: Duration) -> BoxFuture<'a, ()> {
        self.inner.wait_for_release_async(key, pause)
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        self.inner.admin()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        self.inner.trees()
    }
}

/// Takes `key` with `ttl` and `hold`, releases while the first renewal is under way, lets
/// the renewal land last, and returns the key's TTL once the renewer is done with it.
fn ttl_after_a_crossed_release<C: LockStore + Clone + 'static>(
    inner: C,
    handles: bool,
    key: &str,
    ttl: Duration,
    hold: Duration,
) -> Duration {
    let (cache, renewal_started) = Crossing::new(inner, handles);
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
        .admin()
        .expect("the store can look up its holders")
        .holder(&format!("cachelock:{key}"))
        .expect("holder")
        .expect("the key is kept for the hold window");
    left.expect("the kept key has a TTL")
}

fn hold_shorter_than_the_ttl_is_not_extended_by_a_crossing_renewal<C>(inner: C, handles: bool)
where
    C: LockStore + Clone + 'static,
{
    let (ttl, hold) = (Duration::from_secs(3), Duration::from_millis(2_500));
    let left = ttl_after_a_crossed_release(inner, handles, "crossed-short", ttl, hold);
    assert!(
        left <= hold,
        "the key's TTL {left:?} goes past the hold window {hold:?}"
    );
}

fn hold_longer_than_the_ttl_is_not_cut_short_by_a_crossing_renewal<C>(inner: C, handles: bool)
where
    C: LockStore + Clone + 'static,
{
    let (ttl, hold) = (Duration::from_millis(900), Duration::from_secs(20));
    let left = ttl_after_a_crossed_release(inner, handles, "crossed-long", ttl, hold);
    assert!(left <= hold, "{left:?} past the hold window {hold:?}");
    assert!(
        left > ttl,
        "the renewal's TTL {ttl:?} replaced the hold window: {left:?} left"
    );
}

/// Without a crossing renewal: an early release leaves the key with at most the hold window.
fn an_early_release_keeps_the_key_no_longer_than_the_hold<C: LockStore + Clone + 'static>(
    cache: C,
) {
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
    // Without the handle, as the old wrapper (whose default `claim_for_lock` dropped it).
    hold_shorter_than_the_ttl_is_not_extended_by_a_crossing_renewal(MemoryCache::new(), false);
}

#[test]
fn memory_hold_longer_than_the_ttl_survives_a_crossing_renewal() {
    hold_longer_than_the_ttl_is_not_cut_short_by_a_crossing_renewal(MemoryCache::new(), false);
}

#[test]
fn memory_hold_shorter_than_the_ttl_survives_a_crossing_renewal_through_the_handle() {
    hold_shorter_than_the_ttl_is_not_extended_by_a_crossing_renewal(MemoryCache::new(), true);
}

#[test]
fn memory_hold_longer_than_the_ttl_survives_a_crossing_renewal_through_the_handle() {
    hold_longer_than_the_ttl_is_not_cut_short_by_a_crossing_renewal(MemoryCache::new(), true);
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
        hold_shorter_than_the_ttl_is_not_extended_by_a_crossing_renewal(cache, false);
    }

    #[test]
    fn redis_hold_longer_than_the_ttl_survives_a_crossing_renewal() {
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        hold_longer_than_the_ttl_is_not_cut_short_by_a_crossing_renewal(cache, false);
    }
}
