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

use cachelock::tree::{TreeEntry, TreeLock, TreeScope, TreeStore};
use cachelock::{BoxFuture, CacheResult, Claim, Claimed, Handle, LockAdmin, LockStore};

/// Far longer than any test here takes when waiters wake.
pub const LONG: Duration = Duration::from_secs(30);

const SPACE: &str = "wake:";

/// A store whose tree waits are given `LONG` as their pause; counts the waits begun. Its
/// plain lock operations, admin and tree operations are the inner store's.
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

impl<C: LockStore> LongPause<C> {
    /// The inner store's tree locks (every store these tests run on has them).
    fn inner_trees(&self) -> &dyn TreeStore {
        self.inner.trees().expect("the inner store has tree locks")
    }
}

impl<C: LockStore> LockStore for LongPause<C> {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.inner.claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.inner.claim_async(key, claim)
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
        self.inner.extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner.extend_async(key, token, ttl, handle)
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
        // Only a store with tree locks gets the wrapper's (a store without keeps failing).
        self.inner.trees().map(|_| self as &dyn TreeStore)
    }
}

impl<C: LockStore> TreeStore for LongPause<C> {
    fn claim(
        &self,
        space: &str,
        path: &str,
        scope: TreeScope,
        claim: &Claim<'_>,
    ) -> CacheResult<Option<Claimed>> {
        self.inner_trees().claim(space, path, scope, claim)
    }
    fn claim_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.inner_trees().claim_async(space, path, scope, claim)
    }
    fn release(
        &self,
        space: &str,
        path: &str,
        token: &str,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        self.inner_trees().release(space, path, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner_trees().release_async(space, path, token, handle)
    }
    fn extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        self.inner_trees().extend(space, path, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.inner_trees()
            .extend_async(space, path, token, ttl, handle)
    }
    fn holder(&self, space: &str, path: &str, scope: TreeScope) -> CacheResult<Option<TreeEntry>> {
        self.inner_trees().holder(space, path, scope)
    }
    fn holder_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
    ) -> BoxFuture<'a, CacheResult<Option<TreeEntry>>> {
        self.inner_trees().holder_async(space, path, scope)
    }
    fn list(&self, space: &str) -> CacheResult<Vec<TreeEntry>> {
        self.inner_trees().list(space)
    }
    fn list_async<'a>(&'a self, space: &'a str) -> BoxFuture<'a, CacheResult<Vec<TreeEntry>>> {
        self.inner_trees().list_async(space)
    }
    fn wait_for_release(&self, space: &str, path: &str, scope: TreeScope, _: Duration) {
        self.waits.fetch_add(1, Ordering::SeqCst);
        self.inner_trees()
            .wait_for_release(space, path, scope, LONG)
    }
    fn wait_for_release_async<'a>(
        &'a self,
        space: &'a str,
        path: &'a str,
        scope: TreeScope,
        _: Duration,
    ) -> BoxFuture<'a, ()> {
        self.waits.fetch_add(1, Ordering::SeqCst);
        self.inner_trees()
            .wait_for_release_async(space, path, scope, LONG)
    }
}

fn lock<C: LockStore + Clone + 'static>(cache: &C, path: &str) -> TreeLock<C> {
    TreeLock::new(path).cache(cache.clone()).prefix(SPACE)
}

/// Takes and releases `path` every 20 ms until `done` (skipping a round while something
/// conflicts with it), on a thread of its own; counts the releases in `count`.
fn releases_until<C: LockStore + Clone + Send + 'static>(
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
pub fn a_waiter_gets_the_lock_on_the_release<C: LockStore + Clone + Send + 'static>(cache: C) {
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
pub async fn an_async_waiter_gets_the_lock_on_the_release<C: LockStore + Clone + Send + 'static>(
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

/// `TreeStore::wait_for_release` with a `LONG` pause on `/held/child` while `/held` is held:
/// releases of an unrelated path of the space (`/elsewhere`, a cousin) do not end the wait
/// (the waiter would only try its claim in vain); the release of `/held` does.
pub fn only_a_release_that_could_have_blocked_it_ends_a_wait<
    C: LockStore + Clone + Send + 'static,
>(
    cache: C,
) {
    // First a full wake-up (which also has the Redis subscriber subscribed).
    a_waiter_gets_the_lock_on_the_release(cache.clone());
    let held = lock(&cache, "/held").try_acquire().expect("free");
    let waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            cache
                .trees()
                .expect("a store with tree locks")
                .wait_for_release(SPACE, "/held/child", TreeScope::default(), LONG);
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
