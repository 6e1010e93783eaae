//! A dropped `AsyncGuard` releases in the background (the one detached-release path); the
//! event it logs is the guard's own: `lock released` (or `lock was lost before release`)
//! with `key` and `held_for`. On memory, on a get/set/delete cache (through `CacheStore`),
//! and on a real redis-server inside and outside a tokio runtime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cachelock::{Cache, CacheResult, CacheStore, Claim, Lock, LockStore, MemoryCache};
use cachelock_testkit::TracingCapture;

/// A cache with get/set/delete only: `CacheStore` does the rest.
#[derive(Default)]
struct PlainCache(Mutex<HashMap<String, String>>);

impl Cache for PlainCache {
    fn get(&self, key: &str) -> CacheResult<Option<String>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &str, _ttl: Option<Duration>) -> CacheResult<()> {
        self.0
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    fn delete(&self, key: &str) -> CacheResult<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

/// The recorded line of the event `message` about `key`, waiting (bounded) for it: a
/// background release logs a little after the drop.
fn event(capture: &TracingCapture, message: &str, key: &str) -> String {
    let start = Instant::now();
    loop {
        let found = capture
            .text()
            .lines()
            .find(|line| {
                line.contains(&format!(" message={message}"))
                    && line.split_whitespace().any(|w| w == format!("key={key}"))
            })
            .map(str::to_owned);
        if let Some(line) = found {
            return line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no `{message}` event for {key} in:\n{}",
            capture.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_held_for(line: &str) {
    assert!(
        line.split_whitespace().any(|w| w.starts_with("held_for=")),
        "no held_for in {line}"
    );
}

async fn drop_async_guard<C: LockStore + Clone + 'static>(cache: C, key: &str) {
    let guard = Lock::new(key)
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .expect("free");
    tokio::time::sleep(Duration::from_millis(5)).await;
    drop(guard);
}

/// The only test of this binary: it installs the global subscriber (background releases log
/// from tasks and threads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_async_guard_logs_its_release_with_held_for() {
    let capture = TracingCapture::new();
    tracing::subscriber::set_global_default(capture.clone()).expect("first subscriber");

    // Memory: released inline.
    drop_async_guard(MemoryCache::new(), "dropped-memory").await;
    assert_held_for(&event(
        &capture,
        "lock released",
        "cachelock:dropped-memory",
    ));

    // A get/set/delete cache, through its adapter.
    drop_async_guard(CacheStore::new(PlainCache::default()), "dropped-plain").await;
    assert_held_for(&event(&capture, "lock released", "cachelock:dropped-plain"));

    // Lost before the drop: the guard's lost event, with held_for too.
    let cache = MemoryCache::new();
    let guard = Lock::new("dropped-lost")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    // Another owner takes the key: a force-release, then its own claim.
    let admin = cache.admin().expect("memory has admin");
    admin
        .force_release("cachelock:dropped-lost")
        .expect("force-release");
    let intruder = Claim::new(Duration::from_secs(60));
    assert!(cache
        .claim("cachelock:dropped-lost", &intruder)
        .expect("claim")
        .is_some());
    drop(guard);
    let line = event(
        &capture,
        "lock was lost before release",
        "cachelock:dropped-lost",
    );
    assert_held_for(&line);
    // The drop released nothing of the other owner's.
    let (value, _) = admin
        .holder("cachelock:dropped-lost")
        .unwrap()
        .expect("still held by the other owner");
    assert_eq!(value, intruder.owner_value().as_str());

    #[cfg(feature = "redis")]
    {
        use cachelock::redis::RedisCache;
        let server = cachelock_testkit::RedisServer::start();
        let redis = RedisCache::from_url(&server.url()).expect("valid url");

        // Inside a runtime: spawned on it.
        drop_async_guard(redis.clone(), "dropped-redis").await;
        assert_held_for(&event(&capture, "lock released", "cachelock:dropped-redis"));

        // Outside a runtime: on a short-lived thread.
        let guard = Lock::new("dropped-redis-thread")
            .cache(redis.clone())
            .try_acquire_async()
            .await
            .unwrap();
        std::thread::spawn(move || drop(guard)).join().unwrap();
        assert_held_for(&event(
            &capture,
            "lock released",
            "cachelock:dropped-redis-thread",
        ));
        let admin = redis.admin().expect("redis has admin");
        assert_eq!(
            admin
                .holder_async("cachelock:dropped-redis-thread")
                .await
                .unwrap(),
            None
        );
    }
}
