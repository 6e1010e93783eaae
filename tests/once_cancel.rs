//! `#[once(cancel_on_lost = true)]`: the body's future is dropped when the lock is lost, and
//! the call returns `Error::LockLost`. On memory and on a real redis-server.
//!
//! The body waits forever once started; the test overwrites the key behind its back. Waits are
//! bounded generously; nothing asserts how fast the loss is noticed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cachelock::{once, Claim, Error, LockStore, MemoryCache};
use tokio::sync::Notify;

/// Sets its flag when dropped: proves the body's future was dropped, not left running.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Probe {
    started: Notify,
    dropped: Arc<AtomicBool>,
    finished: AtomicBool,
}

impl Probe {
    fn new() -> Arc<Self> {
        Arc::new(Probe {
            started: Notify::new(),
            dropped: Arc::new(AtomicBool::new(false)),
            finished: AtomicBool::new(false),
        })
    }
}

/// Runs until cancelled (or for an hour): it only ends early if the lock is lost.
async fn endless(probe: &Probe) {
    let _flag = DropFlag(probe.dropped.clone());
    probe.started.notify_one();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    probe.finished.store(true, Ordering::SeqCst);
}

/// Another owner takes `key` over behind its holder's back: the key is deleted and claimed
/// again at once with a fresh claim. Returns the new owner's stored value.
fn take_over(cache: &MemoryCache, key: &str) -> String {
    cache.admin().unwrap().force_release(key).unwrap();
    let intruder = Claim::new(Duration::from_secs(60));
    cache
        .claim(key, &intruder)
        .unwrap()
        .expect("the intruder takes the freed key");
    intruder.owner_value().as_str().to_owned()
}

/// The owner value stored under `key`, if any.
fn stored(cache: &MemoryCache, key: &str) -> Option<String> {
    cache
        .admin()
        .unwrap()
        .holder(key)
        .unwrap()
        .map(|(value, _ttl)| value)
}

#[once(key = "cancel-<id>", cache = cache, ttl = "600ms", cancel_on_lost = true, raise_if_locked = true)]
async fn job(cache: MemoryCache, id: u32, probe: Arc<Probe>) -> Result<u32, Error> {
    endless(&probe).await;
    Ok(id)
}

#[once(key = "quick-<id>", cache = cache, ttl = "600ms", cancel_on_lost = true)]
async fn quick(cache: &MemoryCache, id: u32) -> Result<Option<u32>, Error> {
    Ok(Some(id))
}

/// A user error type that a `cachelock::Error` converts into.
#[derive(Debug)]
enum JobError {
    Lock(Error),
}

impl From<Error> for JobError {
    fn from(error: Error) -> Self {
        JobError::Lock(error)
    }
}

#[once(key = "cancel-own-<id>", cache = cache, ttl = "600ms", cancel_on_lost = true, raise_if_locked = true)]
async fn job_own_error(cache: MemoryCache, id: u32, probe: Arc<Probe>) -> Result<u32, JobError> {
    endless(&probe).await;
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lock_cancels_the_body_and_returns_lock_lost() {
    let cache = MemoryCache::new();
    let probe = Probe::new();
    let call = tokio::spawn(job(cache.clone(), 7, probe.clone()));
    probe.started.notified().await;
    let intruder = take_over(&cache, "cachelock:cancel-7");
    let outcome = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the loss is noticed and the call returns")
        .expect("no panic");
    match outcome {
        Err(Error::LockLost { key }) => assert_eq!(key, "cachelock:cancel-7"),
        other => panic!("expected LockLost, got {other:?}"),
    }
    assert!(probe.dropped.load(Ordering::SeqCst), "the body was dropped");
    assert!(!probe.finished.load(Ordering::SeqCst));
    // The intruder's value is untouched: a lost lock deletes nothing.
    assert_eq!(stored(&cache, "cachelock:cancel-7"), Some(intruder));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_converts_into_the_functions_error_type() {
    let cache = MemoryCache::new();
    let probe = Probe::new();
    let call = tokio::spawn(job_own_error(cache.clone(), 8, probe.clone()));
    probe.started.notified().await;
    take_over(&cache, "cachelock:cancel-own-8");
    let outcome = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call returns")
        .expect("no panic");
    assert!(matches!(outcome, Err(JobError::Lock(e)) if e.is_lost()));
    assert!(probe.dropped.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_keeps_its_lock_runs_to_the_end() {
    let cache = MemoryCache::new();
    assert_eq!(quick(&cache, 3).await.unwrap(), Some(3));
    assert_eq!(cache.entry_count(), 0, "released after the call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_key_still_skips_with_cancel_on_lost() {
    let cache = MemoryCache::new();
    let held = cachelock::Lock::new("quick-4")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    assert_eq!(quick(&cache, 4).await.unwrap(), None);
    held.release().await.unwrap();
}

#[cfg(feature = "redis")]
mod redis_server {
    use super::*;
    use cachelock::redis::RedisCache;
    use cachelock_testkit::RedisServer;

    #[once(key = "cancel-<id>", cache = cache, ttl = "600ms", cancel_on_lost = true, raise_if_locked = true)]
    async fn job(cache: RedisCache, id: u32, probe: Arc<Probe>) -> Result<u32, Error> {
        endless(&probe).await;
        Ok(id)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_overwritten_by_another_client_cancels_the_body() {
        let server = RedisServer::start();
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let probe = Probe::new();
        let call = tokio::spawn(job(cache.clone(), 9, probe.clone()));
        probe.started.notified().await;
        // Another client, not sharing anything with `cache`, takes the key over.
        let mut other = redis::Client::open(server.url())
            .and_then(|c| c.get_connection())
            .expect("admin connection");
        let () = redis::cmd("SET")
            .arg("cachelock:cancel-9")
            .arg("intruder")
            .arg("PX")
            .arg(60_000)
            .query(&mut other)
            .expect("SET");
        let outcome = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("the loss is noticed and the call returns")
            .expect("no panic");
        assert!(
            matches!(&outcome, Err(Error::LockLost { key }) if key == "cachelock:cancel-9"),
            "{outcome:?}"
        );
        assert!(probe.dropped.load(Ordering::SeqCst), "the body was dropped");
        assert!(!probe.finished.load(Ordering::SeqCst));
        let value: Option<String> = redis::cmd("GET")
            .arg("cachelock:cancel-9")
            .query(&mut other)
            .expect("GET");
        assert_eq!(value.as_deref(), Some("intruder"), "nothing deleted");
    }
}
