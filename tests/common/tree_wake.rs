//! Tree lock waiters wake on a release, shared by `tree_memory.rs` and `tree_redis.rs`.
//!
//! The backoff pause is made unobservable: [`LongPause`] hands every wait a pause of
//! [`LONG`] instead of the backoff's (at most 100 ms), so a waiter that gets the lock in less
//! than `LONG` was woken (or saw the release when it registered), it did not poll. While
//! the waiter waits, further releases of a descendant of its path follow every 20 ms (a
//! release that could have blocked it, so it wakes it): a wake-up lost in the instant
//! before the waiter registered (or before the Redis subscriber has subscribed) is made up
//! by the next one, which a polling waiter would still sleep through.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachelock::tree::{TreeEntry, TreeLock, TreeScope};
use cachelock::{BoxFuture, Cache, CacheResult};

/// Far longer than any test here takes when waiters wake.
pub const LONG: Duration = Duration::from_secs(30);

const SPACE: &str = "wake:";

/// A cache whose tree waits are given `LONG` as their pause; counts the waits begun.
#[derive(Clone)]
pub struct LongPause<C> {
    inner: C,
    waits: Arc<AtomicUsize>,
}

impl<C> LongPause<C> {
    pub fn new(inner: C) -> Self {
        LongPause {
            inner,
            waits: Arc::default(),
        }
    }

    pub fn waits(&self) -> usize {
        self.waits.load(Ordering::SeqCst)
    }
}

impl<C: Cache> Cache for LongPause<C> {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.inner.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.inner.delete(key)
    }
    fn tree_claim(
        &self,
        space: &str,
        path: &str,
        value: &str,
        ttl: Duration,
        scope: TreeScope,
    ) -> CacheResult<Option<u64>> {
        self.inner.tree_claim(space, path, value, ttl, scope)
    }
    fn tree_release(&self, space: &str, path: &str, token: &str) -> CacheResult<bool> {
        self.inner.tree_release(space, path, token)
    }
    fn tree_extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
    ) -> CacheResult<bool> {
        self.inner.tree_extend(space, path, token, ttl)
    }
    fn tree_holder(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
    ) -> CacheResult<Option<TreeEntry>> {
        self.inner.tree_holder(space, path, scope)
    }
    fn tree_release_detached(&self, space: &str, path: &str, token: &str) {
        self.inner.tree_release_detached(space, path, token)
    }
    fn tree_wait_for_release(&self, space: &str, path: &str, scope: TreeScope, _: Duration) {
        self.waits.fetch_add(1, Ordering::SeqCst);
        self.inner.tree_wait_for_release(space, path, scope, LONG)
    }
    fn tree_claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        value: &'a str,
        ttl: Duration,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<u64>>> {
        self.inner.tree_claim_async(space, path, value, ttl, scope)
    }
    fn tree_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.tree_release_async(space, path, token)
    }
    fn tree_extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.tree_extend_async(space, path, token, ttl)
    }
    fn tree_holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        self.inner.tree_holder_async(space, path, scope)
    }
    fn tree_wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        _: Duration,
    ) -> BoxFuture<'a, ()> {
        self.waits.fetch_add(1, Ordering::SeqCst);
        self.inner
            .tree_wait_for_release_async(space, path, scope, LONG)
    }
}

fn lock<C: Cache + Clone + 'static>(cache: &C, path: &str) -> TreeLock<C> {
    TreeLock::new(path).cache(cache.clone()).prefix(SPACE)
}

/// Takes and releases `path` every 20 ms until `done` (skipping a round while something
/// conflicts with it), on a thread of its own; counts the releases in `count`.
fn releases_until<C: Cache + Clone + Send + 'static>(
    cache: &C,
    path: &'static str,
    done: &Arc<AtomicBool>,
    count: &Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    let (cache, done, count) = (cache.clone(), done.clone(), count.clone());
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            if let Ok(guard) = lock(&cache, path).try_acquire() {
                guard.release().expect("released");
                count.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

fn until_waiting<C>(cache: &LongPause<C>) {
    let started = Instant::now();
    while cache.waits() == 0 {
        assert!(started.elapsed() < LONG, "the waiter never waited");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A waiter on `/tree/a/b` while `/tree` is held gets the lock once `/tree` is released,
/// long before its first (`LONG`) pause could have ended.
pub fn a_waiter_gets_the_lock_on_the_release<C: Cache + Clone + Send + 'static>(cache: C) {
    let cache = LongPause::new(cache);
    let parent = lock(&cache, "/tree").try_acquire().expect("free");
    let waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let guard = lock(&cache, "/tree/a/b")
                .acquire_timeout(LONG * 2)
                .expect("acquired after the release");
            let acquired = Instant::now();
            guard.release().expect("released");
            (started, acquired)
        })
    };
    until_waiting(&cache);
    let released = Instant::now();
    parent.release().expect("released");
    let done = Arc::new(AtomicBool::new(false));
    let pinger = releases_until(&cache, "/tree/a/b/c", &done, &Arc::default());
    let (started, acquired) = waiter.join().expect("waiter");
    done.store(true, Ordering::SeqCst);
    pinger.join().expect("pinger");
    assert!(acquired >= released, "not before the release");
    assert!(
        acquired - started < LONG,
        "woken by a release, not at the end of a {LONG:?} pause"
    );
}

/// Async twin of [`a_waiter_gets_the_lock_on_the_release`].
pub async fn an_async_waiter_gets_the_lock_on_the_release<C: Cache + Clone + Send + 'static>(
    cache: C,
) {
    let cache = LongPause::new(cache);
    let parent = lock(&cache, "/tree-async")
        .try_acquire_async()
        .await
        .expect("free");
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let guard = lock(&cache, "/tree-async/a/b")
                .acquire_timeout_async(LONG * 2)
                .await
                .expect("acquired after the release");
            let acquired = Instant::now();
            guard.release().await.expect("released");
            (started, acquired)
        })
    };
    while cache.waits() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let released = Instant::now();
    parent.release().await.expect("released");
    let done = Arc::new(AtomicBool::new(false));
    let pinger = releases_until(&cache, "/tree-async/a/b/c", &done, &Arc::default());
    let (started, acquired) = waiter.await.expect("waiter");
    done.store(true, Ordering::SeqCst);
    pinger.join().expect("pinger");
    assert!(acquired >= released, "not before the release");
    assert!(
        acquired - started < LONG,
        "woken by a release, not at the end of a {LONG:?} pause"
    );
}

/// `tree_wait_for_release` with a `LONG` pause on `/held/child` while `/held` is held:
/// releases of an unrelated path of the space (`/elsewhere`, a cousin) do not end the wait
/// (the waiter would only try its claim in vain); the release of `/held` does.
pub fn only_a_release_that_could_have_blocked_it_ends_a_wait<C: Cache + Clone + Send + 'static>(
    cache: C,
) {
    // First a full wake-up (which also has the Redis subscriber subscribed).
    a_waiter_gets_the_lock_on_the_release(cache.clone());
    let held = lock(&cache, "/held").try_acquire().expect("free");
    let waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            cache.tree_wait_for_release(SPACE, "/held/child", TreeScope::default(), LONG);
            started.elapsed()
        })
    };
    let done = Arc::new(AtomicBool::new(false));
    let elsewhere = Arc::new(AtomicUsize::new(0));
    let pinger = releases_until(&cache, "/elsewhere", &done, &elsewhere);
    let started = Instant::now();
    while elsewhere.load(Ordering::SeqCst) < 10 {
        assert!(started.elapsed() < LONG, "the releases never happened");
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::SeqCst);
    pinger.join().expect("pinger");
    assert!(
        !waiter.is_finished(),
        "a release of an unrelated path ended the wait"
    );
    held.release().expect("released");
    // A descendant released afterwards makes up for a wake-up lost in the race with the
    // waiter's registration (it could have blocked the waiter too).
    let done = Arc::new(AtomicBool::new(false));
    let pinger = releases_until(&cache, "/held/child/x", &done, &Arc::default());
    let waited = waiter.join().expect("waiter");
    done.store(true, Ordering::SeqCst);
    pinger.join().expect("pinger");
    assert!(
        waited < LONG,
        "woken by the release of its blocker, not timed out"
    );
}
