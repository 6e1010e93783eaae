//! Who holds a lock: `Lock::holder`, `held_locks`, `force_release`, on memory and on a real
//! redis-server. Owner checks still compare the token alone.

use std::time::Duration;

use cachelock::{held_locks, held_locks_async, CacheStore, Lock, LockStore, MemoryCache};

fn holder_reports_what_was_set<C: LockStore + Clone + 'static>(cache: C) {
    let lock = Lock::new("holder-job")
        .cache(cache.clone())
        .ttl(Duration::from_secs(30))
        .label("nightly export");
    assert_eq!(lock.holder().unwrap(), None, "free");
    let guard = lock.try_acquire().unwrap();
    let holder = lock.holder().unwrap().expect("held");
    assert_eq!(holder.key, "cachelock:holder-job");
    assert_eq!(holder.pid, Some(std::process::id()));
    assert_eq!(holder.label.as_deref(), Some("nightly export"));
    let ttl = holder.ttl.expect("a TTL");
    assert!(
        ttl <= Duration::from_secs(30) && ttl > Duration::ZERO,
        "{ttl:?}"
    );
    assert!(!format!("{holder:?}").contains('|'), "{holder:?}");

    // Another lock without a label under the same prefix, and one elsewhere.
    let other = Lock::new("holder-other")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    let elsewhere = Lock::new("job")
        .prefix("elsewhere:")
        .cache(cache.clone())
        .try_acquire()
        .unwrap();
    let mut listed = held_locks(&cache, "cachelock:holder-").unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = listed.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(keys, ["cachelock:holder-job", "cachelock:holder-other"]);
    assert_eq!(listed[1].label, None);

    // Renewal and release still work: the owner check compares the token only.
    guard.extend().unwrap();
    guard.release().unwrap();
    assert_eq!(lock.holder().unwrap(), None);

    // force_release deletes whoever holds it; the holder finds its lock lost.
    let other_lock = Lock::new("holder-other").cache(cache.clone());
    other_lock.force_release().unwrap();
    assert_eq!(other_lock.holder().unwrap(), None);
    assert!(other.release().unwrap_err().is_lost());
    elsewhere.release().unwrap();
    assert!(held_locks(&cache, "cachelock:holder-").unwrap().is_empty());
}

/// The async admin calls report what the sync ones do.
async fn async_admin_calls_report_what_was_set<C: LockStore + Clone + 'static>(cache: C) {
    let lock = Lock::new("async-holder-job")
        .cache(cache.clone())
        .ttl(Duration::from_secs(30))
        .label("async export");
    assert_eq!(lock.holder_async().await.unwrap(), None, "free");
    let guard = lock.try_acquire_async().await.unwrap();
    let holder = lock.holder_async().await.unwrap().expect("held");
    let sync_holder = lock.holder().unwrap().expect("held");
    assert_eq!(
        (&holder.key, &holder.host, holder.pid, &holder.label),
        (
            &sync_holder.key,
            &sync_holder.host,
            sync_holder.pid,
            &sync_holder.label
        )
    );
    assert_eq!(holder.key, "cachelock:async-holder-job");
    assert_eq!(holder.pid, Some(std::process::id()));
    assert_eq!(holder.label.as_deref(), Some("async export"));
    let ttl = holder.ttl.expect("a TTL");
    assert!(
        ttl <= Duration::from_secs(30) && ttl > Duration::ZERO,
        "{ttl:?}"
    );

    let other = Lock::new("async-holder-other")
        .cache(cache.clone())
        .try_acquire_async()
        .await
        .unwrap();
    let mut listed = held_locks_async(&cache, "cachelock:async-holder-")
        .await
        .unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = listed.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        keys,
        ["cachelock:async-holder-job", "cachelock:async-holder-other"]
    );
    assert_eq!(listed[0].label.as_deref(), Some("async export"));

    // force_release_async deletes whoever holds it; the holder finds its lock lost.
    let other_lock = Lock::new("async-holder-other").cache(cache.clone());
    other_lock.force_release_async().await.unwrap();
    assert_eq!(other_lock.holder_async().await.unwrap(), None);
    assert!(other.release().await.unwrap_err().is_lost());
    guard.release().await.unwrap();
    assert!(held_locks_async(&cache, "cachelock:async-holder-")
        .await
        .unwrap()
        .is_empty());
    // Bad input is an error, never a panic.
    assert!(Lock::new("")
        .cache(cache.clone())
        .holder_async()
        .await
        .is_err());
}

#[tokio::test]
async fn memory_async_admin_calls() {
    async_admin_calls_report_what_was_set(MemoryCache::new()).await;
}

#[test]
fn memory_holder_list_and_force_release() {
    holder_reports_what_was_set(MemoryCache::new());
}

#[test]
fn a_get_set_delete_cache_reports_the_holder_but_cannot_list() {
    let cache = CacheStore::new(common::PlainCache::default());
    let lock = Lock::new("plain-holder").cache(cache.clone()).label("l");
    let guard = lock.try_acquire().unwrap();
    let holder = lock.holder().unwrap().expect("held");
    assert_eq!(holder.label.as_deref(), Some("l"));
    assert!(holder.ttl.is_some());
    assert!(held_locks(&cache, "cachelock:").unwrap_err().is_backend());
    guard.release().unwrap();
}

mod common {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use cachelock::{Cache, CacheResult};

    /// A cache with get/set/delete only: `CacheStore` does the rest.
    #[derive(Default)]
    pub(crate) struct PlainCache(Mutex<HashMap<String, String>>);

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
}

#[cfg(feature = "redis")]
#[test]
fn redis_holder_list_and_force_release() {
    let server = cachelock_testkit::RedisServer::start();
    let cache = cachelock::redis::RedisCache::from_url(&server.url()).expect("valid url");
    holder_reports_what_was_set(cache);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_async_admin_calls() {
    let server = cachelock_testkit::RedisServer::start();
    let cache = cachelock::redis::RedisCache::from_url(&server.url()).expect("valid url");
    async_admin_calls_report_what_was_set(cache).await;
}
