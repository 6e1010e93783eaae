//! A user's cache with only get/set/delete plugs in, and the defaults stay honest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachelock::{testing, Cache, CacheResult, Lock, NoopCache};

/// Only the three methods of the contract, and it ignores TTLs entirely.
#[derive(Default, Clone)]
struct DictCache(Arc<Mutex<HashMap<String, String>>>);

impl Cache for DictCache {
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

#[test]
fn a_get_set_delete_cache_passes_the_conformance_suite() {
    testing::conformance(DictCache::default()).unwrap();
}

#[tokio::test]
async fn a_get_set_delete_cache_passes_the_async_conformance_suite() {
    testing::conformance_async(DictCache::default())
        .await
        .unwrap();
}

#[test]
fn locks_expire_even_when_the_cache_ignores_ttls() {
    let cache = DictCache::default();
    let stale = Lock::new("job")
        .cache(cache.clone())
        .ttl(Duration::from_millis(30))
        .renew(false) // stands for a holder that stalled or died
        .try_acquire()
        .unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let fresh = Lock::new("job").cache(cache.clone()).try_acquire();
    assert!(
        fresh.is_ok(),
        "a crashed holder must not block the key past its TTL"
    );
    assert!(stale.release().unwrap_err().is_lost());
}

#[test]
fn a_foreign_value_in_the_key_is_never_overwritten_or_deleted() {
    let cache = DictCache::default();
    cache
        .set("cachelock:job", "written by someone else", None)
        .unwrap();
    assert!(Lock::new("job")
        .cache(cache.clone())
        .try_acquire()
        .unwrap_err()
        .is_locked());
    assert_eq!(
        cache.get("cachelock:job").unwrap().as_deref(),
        Some("written by someone else")
    );
}

#[test]
fn the_noop_cache_grants_everything() {
    let a = Lock::new("job").cache(NoopCache).try_acquire().unwrap();
    let b = Lock::new("job").cache(NoopCache).try_acquire().unwrap();
    a.release().unwrap();
    b.release().unwrap();
    testing::conformance(NoopCache).unwrap_err();
    let tree = cachelock::tree::TreeLock::new("/jobs/a").cache(NoopCache);
    let _guard = tree.try_acquire().unwrap();
    assert!(
        cachelock::tree::held_locks(&NoopCache, "default")
            .unwrap()
            .is_empty(),
        "the noop cache stores nothing, so it lists nothing"
    );
}
