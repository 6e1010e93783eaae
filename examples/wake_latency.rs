//! Wake-up latency: how long after the holder releases does a waiter in `acquire_timeout`
//! hold the lock? `MemoryCache` wakes its waiters on release; a cache with only the default
//! `wait_for_release` polls with backoff (2 ms doubling to 100 ms). The "tree" rows do the
//! same with a `TreeLock` waiter on `/<round>/child` while `/<round>` is held (woken by
//! `tree_wait_for_release`, or polling with its default).
//!
//! With `--features redis` it also measures a `RedisCache` (a redis-server started on a
//! loopback port by `cachelock-testkit`), whose release script publishes the key and whose
//! waiters subscribe, against polling; then the same on a three-node `RedisClusterCache`.
//!
//! `cargo run --release --example wake_latency [--features redis]`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cachelock::tree::{TreeLock, TreeScope};
use cachelock::{Cache, CacheResult, Lock, MemoryCache};

/// A cache without its release notification: waiters poll with backoff.
#[derive(Clone)]
struct Polling<C>(C);

impl<C: Cache> Cache for Polling<C> {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> CacheResult<()> {
        self.0.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.0.delete(key)
    }
    fn claim(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<Option<u64>> {
        self.0.claim(key, token, ttl)
    }
    fn release(&self, key: &str, token: &str) -> CacheResult<bool> {
        self.0.release(key, token)
    }
    fn extend(&self, key: &str, token: &str, ttl: Duration) -> CacheResult<bool> {
        self.0.extend(key, token, ttl)
    }
    fn tree_claim(
        &self,
        space: &str,
        path: &str,
        value: &str,
        ttl: Duration,
        scope: TreeScope,
    ) -> CacheResult<Option<u64>> {
        self.0.tree_claim(space, path, value, ttl, scope)
    }
    fn tree_release(&self, space: &str, path: &str, token: &str) -> CacheResult<bool> {
        self.0.tree_release(space, path, token)
    }
    fn tree_extend(
        &self,
        space: &str,
        path: &str,
        token: &str,
        ttl: Duration,
    ) -> CacheResult<bool> {
        self.0.tree_extend(space, path, token, ttl)
    }
}

/// Plain locks on `wake-<round>`, or tree locks: held `/<round>`, waited for `/<round>/child`.
#[derive(Clone, Copy)]
enum Kind {
    Plain,
    Tree,
}

/// Takes the holder's lock (`waiter`: waits up to 30 s for the waiter's); returns its release.
fn take<C: Cache + Clone + 'static>(
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
fn measure<C: Cache + Clone + Send + 'static>(cache: C, hold: Duration) -> Vec<Duration> {
    measure_kind(cache, hold, Kind::Plain)
}

fn measure_kind<C: Cache + Clone + Send + 'static>(
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
