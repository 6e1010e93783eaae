//! Wake-up latency: how long after the holder releases does a waiter in `acquire_timeout`
//! hold the lock? `MemoryCache` wakes its waiters on release; a cache with only the default
//! `wait_for_release` polls with backoff (2 ms doubling to 100 ms).
//!
//! With `--features redis` it also measures a `RedisCache` (a redis-server started on a
//! loopback port by `cachelock-testkit`), whose release script publishes the key and whose
//! waiters subscribe, against polling; then the same on a three-node `RedisClusterCache`.
//!
//! `cargo run --release --example wake_latency [--features redis]`

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

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
}

const ROUNDS: usize = 40;

/// Release → acquired, over `ROUNDS` rounds: the holder keeps the lock `hold`, a waiter
/// started right after it waits in `acquire_timeout`.
fn measure<C: Cache + Clone + Send + 'static>(cache: C, hold: Duration) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let key = format!("wake-{round}");
        let guard = Lock::new(key.as_str())
            .cache(cache.clone())
            .try_acquire()
            .expect("free");
        let ready = Arc::new(Barrier::new(2));
        let waiter = {
            let (cache, key, ready) = (cache.clone(), key.clone(), ready.clone());
            std::thread::spawn(move || {
                ready.wait();
                let guard = Lock::new(key)
                    .cache(cache)
                    .acquire_timeout(Duration::from_secs(30))
                    .expect("acquired after the release");
                let acquired = Instant::now();
                drop(guard);
                acquired
            })
        };
        ready.wait();
        std::thread::sleep(hold);
        let released = Instant::now();
        guard.release().expect("released");
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
        }
    }
}
