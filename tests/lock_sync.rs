//! The `Lock` guard in sync code.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use cachelock::{Cache, CacheStore, Error, Lock, LockAdmin, LockStore, MemoryCache, MAX_KEY_LEN};

fn lock(cache: &MemoryCache, key: &str) -> Lock<MemoryCache> {
    Lock::new(key).cache(cache.clone())
}

#[test]
fn a_held_key_is_refused_at_once_and_granted_after_release() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "job").try_acquire().unwrap();
    let err = lock(&cache, "job").try_acquire().unwrap_err();
    assert!(
        matches!(&err, Error::Locked { key } if key == "cachelock:job"),
        "{err:?}"
    );
    guard.release().unwrap();
    assert!(lock(&cache, "job").try_acquire().is_ok());
}

#[test]
fn dropping_the_guard_releases() {
    let cache = MemoryCache::new();
    drop(lock(&cache, "job").try_acquire().unwrap());
    assert!(lock(&cache, "job").try_acquire().is_ok());
}

#[test]
fn different_keys_do_not_conflict() {
    let cache = MemoryCache::new();
    let _a = lock(&cache, "a").try_acquire().unwrap();
    let _b = lock(&cache, "b").try_acquire().unwrap();
}

#[test]
fn release_after_expiry_reports_lost_and_leaves_the_new_owner_alone() {
    let cache = MemoryCache::new();
    let first = lock(&cache, "job")
        .ttl(Duration::from_millis(30))
        .renew(false) // stands for a holder that stalled or died
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let second = lock(&cache, "job").try_acquire().unwrap();
    let err = first.release().unwrap_err();
    assert!(
        matches!(&err, Error::LockLost { key } if key == "cachelock:job"),
        "{err:?}"
    );
    // The new owner still holds the key.
    assert!(lock(&cache, "job").try_acquire().unwrap_err().is_locked());
    second.release().unwrap();
}

#[test]
fn dropping_an_expired_guard_does_not_delete_the_new_owners_key() {
    let cache = MemoryCache::new();
    let first = lock(&cache, "job")
        .ttl(Duration::from_millis(30))
        .renew(false) // stands for a holder that stalled or died
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let _second = lock(&cache, "job").try_acquire().unwrap();
    drop(first);
    assert!(lock(&cache, "job").try_acquire().unwrap_err().is_locked());
}

#[test]
fn extend_keeps_the_lock_past_its_first_ttl() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "job")
        .ttl(Duration::from_millis(60))
        .try_acquire()
        .unwrap();
    guard.extend_for(Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(lock(&cache, "job").try_acquire().unwrap_err().is_locked());
    guard.release().unwrap();
}

#[test]
fn extend_after_expiry_reports_lost() {
    let cache = MemoryCache::new();
    let guard = lock(&cache, "job")
        .ttl(Duration::from_millis(30))
        .renew(false) // stands for a holder that stalled or died
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    assert!(guard.extend().unwrap_err().is_lost());
}

#[test]
fn acquire_timeout_gives_up_with_locked() {
    let cache = MemoryCache::new();
    let _held = lock(&cache, "job").try_acquire().unwrap();
    let err = lock(&cache, "job")
        .acquire_timeout(Duration::from_millis(50))
        .unwrap_err();
    assert!(err.is_locked(), "{err:?}");
}

#[test]
fn acquire_timeout_gets_the_lock_once_the_holder_releases() {
    let cache = MemoryCache::new();
    let held = lock(&cache, "job").try_acquire().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            lock(&cache, "job").acquire_timeout(Duration::from_secs(60))
        })
    };
    started_rx.recv().unwrap();
    held.release().unwrap();
    let guard = waiter
        .join()
        .unwrap()
        .expect("waiter gets the lock after release");
    assert_eq!(guard.key(), "cachelock:job");
}

#[test]
fn run_releases_on_return_and_on_panic() {
    let cache = MemoryCache::new();
    assert_eq!(lock(&cache, "job").run(|| 7).unwrap(), 7);
    assert!(lock(&cache, "job").try_acquire().is_ok());

    let panicked = std::panic::catch_unwind(|| lock(&cache, "job").run(|| panic!("boom")));
    assert!(panicked.is_err());
    assert!(
        lock(&cache, "job").try_acquire().is_ok(),
        "a panic must release the lock"
    );

    let result: Result<Result<(), &str>, Error> = lock(&cache, "job").run(|| Err("failed"));
    assert_eq!(result.unwrap(), Err("failed"));
    assert!(lock(&cache, "job").try_acquire().is_ok());
}

#[test]
fn run_does_not_call_the_closure_when_the_key_is_held() {
    let cache = MemoryCache::new();
    let _held = lock(&cache, "job").try_acquire().unwrap();
    let mut called = false;
    let err = lock(&cache, "job").run(|| called = true).unwrap_err();
    assert!(err.is_locked());
    assert!(!called);
}

#[test]
fn invalid_keys_and_settings_are_errors_that_name_the_problem() {
    let cache = MemoryCache::new();
    let err = lock(&cache, "").try_acquire().unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    assert!(err.to_string().contains("empty"), "{err}");

    let long = "k".repeat(MAX_KEY_LEN + 1);
    let err = lock(&cache, &long).try_acquire().unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    assert!(err.to_string().contains("1024"), "{err}");
    assert!(lock(&cache, &"k".repeat(MAX_KEY_LEN)).try_acquire().is_ok());

    let err = lock(&cache, "job")
        .ttl(Duration::ZERO)
        .try_acquire()
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSetting { key, .. } if key == "cachelock:job"),
        "{err:?}"
    );
    let err = lock(&cache, "job")
        .ttl(Duration::from_secs(365 * 24 * 3600))
        .try_acquire()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSetting { .. }), "{err:?}");
}

#[test]
fn a_lock_can_choose_its_own_prefix() {
    let cache = MemoryCache::new();
    let l = lock(&cache, "job").prefix("billing:");
    assert_eq!(l.full_key(), "billing:job");
    let guard = l.try_acquire().unwrap();
    assert_eq!(guard.key(), "billing:job");
    assert!(cache.holder("billing:job").unwrap().is_some());
    // Same key under another prefix is another lock.
    let _other = lock(&cache, "job").try_acquire().unwrap();
}

#[test]
fn forwarding_impls_share_the_same_store() {
    let cache = MemoryCache::new();
    let arc: Arc<dyn LockStore> = Arc::new(cache.clone());
    let boxed: Arc<Box<dyn LockStore>> = Arc::new(Box::new(cache.clone()));
    let leaked: &'static MemoryCache = Box::leak(Box::new(cache.clone()));
    let _held = Lock::new("job").cache(leaked).try_acquire().unwrap();
    assert!(Lock::new("job")
        .cache(arc)
        .try_acquire()
        .unwrap_err()
        .is_locked());
    assert!(Lock::new("job")
        .cache(boxed)
        .try_acquire()
        .unwrap_err()
        .is_locked());
    assert!(Lock::new("job")
        .cache(Arc::new(cache.clone()))
        .try_acquire()
        .unwrap_err()
        .is_locked());
}

#[test]
fn error_messages_name_the_key() {
    let cache = MemoryCache::new();
    let _held = lock(&cache, "nightly").try_acquire().unwrap();
    let err = lock(&cache, "nightly").try_acquire().unwrap_err();
    assert_eq!(
        err.to_string(),
        "lock `cachelock:nightly` is held by another owner"
    );
    assert_eq!(err.key(), Some("cachelock:nightly"));
}

/// A get/set/delete cache whose every operation fails (a lock reaches it through
/// `CacheStore`): errors surface as `Error::Backend`, never a panic.
struct Broken;

impl Cache for Broken {
    fn get(&self, _: &str) -> cachelock::CacheResult<Option<String>> {
        Err("connection refused".into())
    }
    fn set(&self, _: &str, _: &str, _: Option<Duration>) -> cachelock::CacheResult<()> {
        Err("connection refused".into())
    }
    fn delete(&self, _: &str) -> cachelock::CacheResult<()> {
        Err("connection refused".into())
    }
}

#[test]
fn a_failing_cache_gives_backend_errors() {
    let broken = CacheStore::new(Broken);
    let err = Lock::new("job")
        .cache(broken.clone())
        .try_acquire()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Backend { key, .. } if key == "cachelock:job"),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).expect("the backend's error is the source");
    assert_eq!(source.to_string(), "connection refused");
    // A backend error ends a wait at once instead of retrying until the deadline.
    assert!(Lock::new("job")
        .cache(broken)
        .acquire_timeout(Duration::from_secs(3600))
        .unwrap_err()
        .is_backend());
}

#[test]
fn a_waiter_acquires_once_the_holder_releases_on_memory() {
    use std::time::{Duration, Instant};
    let cache = cachelock::MemoryCache::new();
    let guard = cachelock::Lock::new("wake-up")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    let waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let guard = cachelock::Lock::new("wake-up")
                .cache(cache)
                .acquire_timeout(Duration::from_secs(30))
                .expect("acquired after the release");
            (started, Instant::now(), guard.release())
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let released = Instant::now();
    guard.release().unwrap();
    let (_, acquired, release) = waiter.join().unwrap();
    release.unwrap();
    assert!(acquired >= released, "not before the release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_waiter_acquires_once_the_holder_releases_on_memory() {
    use std::time::Duration;
    let cache = cachelock::MemoryCache::new();
    let guard = cachelock::Lock::new("wake-up-async")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cachelock::Lock::new("wake-up-async")
                .cache(cache)
                .acquire_timeout_async(Duration::from_secs(30))
                .await
                .expect("acquired after the release")
                .release()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    guard.release().await.unwrap();
    waiter.await.unwrap().unwrap();
}
