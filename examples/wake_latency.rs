//! Wake-up latency: how long after the holder releases does a waiter in `acquire_timeout`
//! hold the lock? `MemoryCache` wakes its waiters on release; a store with only the default
//! `LockStore::wait_for_release` polls with backoff (2 ms doubling to 100 ms). The "tree"
//! rows do the same with a `TreeLock` waiter on `/<round>/child` while `/<round>` is held
//! (woken by `TreeStore::wait_for_release`, or polling with its default).
//!
//! With `--features redis` it also measures a `RedisCache` (a redis-server started on a
//! loopback port by `cachelock-testkit`), whose release script publishes the key and whose
//! waiters subscribe, against polling; then the same on a three-node `RedisClusterCache`.
//!
//! `cargo run --release --example wake_latency [--features redis]`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cachelock::tree::{TreeEntry, TreeLock, TreeScope, TreeStore};
use cachelock::{
    BoxFuture, CacheResult, Claim, Claimed, Handle, Lock, LockAdmin, LockStore, MemoryCache,
};

/// A store without its release notification: waiters poll with backoff. It forwards every
/// operation to the inner store but leaves `wait_for_release` (plain and tree) to the
/// traits' defaults, which sleep the backoff pause.
#[derive(Clone)]
struct Polling<C>(C);

impl<C: LockStore> Polling<C> {
    fn inner_trees(&self) -> &dyn TreeStore {
        self.0.trees().expect("the inner store has tree locks")
    }
}

impl<C: LockStore> LockStore for Polling<C> {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.0.claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.0.claim_async(key, claim)
    }
    fn release(&self, key: &str, token: &str, handle: Option<&Handle>) -> CacheResult<bool> {
        self.0.release(key, token, handle)
    }
    fn release_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.0.release_async(key, token, handle)
    }
    fn extend(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
        handle: Option<&Handle>,
    ) -> CacheResult<bool> {
        self.0.extend(key, token, ttl, handle)
    }
    fn extend_async<'a>(
        &'a self,
        key: &'a str,
        token: &'a str,
        ttl: Duration,
        handle: Option<&'a Handle>,
    ) -> BoxFuture<'a, CacheResult<bool>> {
        self.0.extend_async(key, token, ttl, handle)
    }
    fn admin(&self) -> Option<&dyn LockAdmin> {
        self.0.admin()
    }
    fn trees(&self) -> Option<&dyn TreeStore> {
        self.0.trees().map(|_| self as &dyn TreeStore)
    }
}

impl<C: LockStore> TreeStore for Polling<C> {
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
}

/// Plain locks on `wake-<round>`, or tree locks: held `/<round>`, waited for `/<round>/child`.
#[derive(Clone, Copy)]
enum Kind {
    Plain,
    Tree,
}

/// Takes the holder's lock (`waiter`: waits up to 30 s for the waiter's); returns its release.
fn take<C: LockStore + Clone + 'static>(
    cache: &C,
    kind: Kind,
    round: usize,
    waiter: bool,
) -> Box<dyn FnOnce() + Send> {
    match kind {
        Kind::Plain => {
            let lock = Lock::new(format!("wake-{round}")).cache(cache.clone());
            let guard = if waiter {
                lock.acquire_timeout(Duration::from_secs(30))
            } else {
                lock.try_acquire()
            }
            .expect("acquired");
            Box::new(move || guard.release().expect("released"))
        }
        Kind::Tree => {
            let path = if waiter {
                format!("/{round}/child")
            } else {
                format!("/{round}")
            };
            let lock = TreeLock::new(path)
                .cache(cache.clone())
                .prefix("wake-tree:");
            let guard = if waiter {
                lock.acquire_timeout(Duration::from_secs(30))
            } else {
                lock.try_acquire()
            }
            .expect("acquired");
            Box::new(move || guard.release().expect("released"))
        }
    }
}

const ROUNDS: usize = 40;

/// Release → acquired, over `ROUNDS` rounds: the holder keeps the lock `hold`, a waiter
/// started right after it waits in `acquire_timeout`.
fn measure<C: LockStore + Clone + Send + 'static>(cache: C, hold: Duration) -> Vec<Duration> {
    measure_kind(cache, hold, Kind::Plain)
}

fn measure_kind<C: LockStore + Clone + Send + 'static>(
    cache: C,
    hold: Duration,
    kind: Kind,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let release = take(&cache, kind, round, false);
        let ready = Arc::new(Barrier::new(2));
        let waiter = {
            let (cache, ready) = (cache.clone(), ready.clone());
            std::thread::spawn(move || {
                ready.wait();
                let release = take(&cache, kind, round, true);
                let acquired = Instant::now();
                release();
                acquired
            })
        };
        ready.wait();
        std::thread::sleep(hold);
        let released = Instant::now();
        release();
        let acquired = waiter.join().expect("waiter");
        latencies.push(acquired.saturating_duration_since(released));
    }
    latencies.sort();
    latencies
}

fn row(name: &str, hold: Duration, latencies: &[Duration]) {
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "| {name} | {hold:?} | {:?} | {:?} | {:?} |",
        pick(0.5),
        pick(0.9),
        latencies[latencies.len() - 1]
    );
}

fn main() {
    println!("| cache | hold | p50 release→acquired | p90 | max |");
    println!("|---|---|---|---|---|");
    for hold in [Duration::from_millis(5), Duration::from_millis(50)] {
        row(
            "MemoryCache (notified)",
            hold,
            &measure(MemoryCache::new(), hold),
        );
        row(
            "polling with backoff",
            hold,
            &measure(Polling(MemoryCache::new()), hold),
        );
        row(
            "MemoryCache tree (notified)",
            hold,
            &measure_kind(MemoryCache::new(), hold, Kind::Tree),
        );
        row(
            "tree polling with backoff",
            hold,
            &measure_kind(Polling(MemoryCache::new()), hold, Kind::Tree),
        );
    }
    #[cfg(feature = "redis")]
    {
        let server = cachelock_testkit::RedisServer::start();
        let cache = cachelock::redis::RedisCache::from_url(&server.url()).expect("valid url");
        // Starts the subscriber before measuring.
        let _ = measure(cache.clone(), Duration::from_millis(5));
        for hold in [Duration::from_millis(5), Duration::from_millis(50)] {
            row(
                "RedisCache (published)",
                hold,
                &measure(cache.clone(), hold),
            );
            row(
                "RedisCache polling with backoff",
                hold,
                &measure(Polling(cache.clone()), hold),
            );
            row(
                "RedisCache tree (published)",
                hold,
                &measure_kind(cache.clone(), hold, Kind::Tree),
            );
            row(
                "RedisCache tree polling with backoff",
                hold,
                &measure_kind(Polling(cache.clone()), hold, Kind::Tree),
            );
        }
        drop(server);
        let cluster = cachelock_testkit::RedisCluster::start();
        let cache =
            cachelock::redis::RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
        let _ = measure(cache.clone(), Duration::from_millis(5));
        for hold in [Duration::from_millis(5), Duration::from_millis(50)] {
            row(
                "RedisClusterCache (published)",
                hold,
                &measure(cache.clone(), hold),
            );
            row(
                "RedisClusterCache polling with backoff",
                hold,
                &measure(Polling(cache.clone()), hold),
            );
            row(
                "RedisClusterCache tree (published)",
                hold,
                &measure_kind(cache.clone(), hold, Kind::Tree),
            );
            row(
                "RedisClusterCache tree polling with backoff",
                hold,
                &measure_kind(Polling(cache.clone()), hold, Kind::Tree),
            );
        }
    }
}
