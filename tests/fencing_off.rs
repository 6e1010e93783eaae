//! `Lock::fencing(false)` and `#[once]` without `fence = ...`: the claim yields no fencing
//! token (the guard's fence is 0), costs on Redis exactly `SET NX PX` + `EVALSHA`
//! (compare-and-delete) and never touches the fence counter, and the lock is as exclusive
//! as ever: a second claim is refused, release and extend are owner-checked, renewal keeps
//! it. On memory, on a get/set/delete cache (through `CacheStore`), and on a real
//! redis-server.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cachelock::{
    once, BoxFuture, Cache, CacheResult, CacheStore, Claim, Claimed, Handle, Lock, LockAdmin,
    LockStore, MemoryCache,
};

#[cfg(feature = "redis")]
#[path = "common/commands.rs"]
mod commands;

/// What a `fencing(false)` lock must still do on any cache: fence 0, a second claim
/// (fenced or not) refused, owner-checked release, free again after.
fn unfenced_lock_excludes<C: LockStore + Clone + 'static>(cache: C, key: &str) {
    let lock = Lock::new(key)
        .cache(cache.clone())
        .ttl(Duration::from_secs(30))
        .fencing(false);
    let guard = lock.try_acquire().expect("free");
    assert_eq!(guard.fence(), 0, "no fence: taken with fencing(false)");
    assert!(
        lock.try_acquire().unwrap_err().is_locked(),
        "unfenced second"
    );
    let fenced = Lock::new(key).cache(cache.clone());
    assert!(
        fenced.try_acquire().unwrap_err().is_locked(),
        "fenced second"
    );
    guard.extend().expect("the owner extends");
    guard.release().expect("the owner releases");
    let next = fenced.try_acquire().expect("free after release");
    assert!(next.fence() >= 1, "a fenced lock still gets a real fence");
    next.release().unwrap();
}

/// Another owner takes the key (a force-release, then its own claim): the unfenced owner can
/// neither extend nor release it, and its release deletes nothing.
fn unfenced_release_is_owner_checked<C: LockStore + Clone + 'static>(cache: C, key: &str) {
    let lock = Lock::new(key)
        .cache(cache.clone())
        .ttl(Duration::from_secs(30))
        .renew(false)
        .fencing(false);
    let guard = lock.try_acquire().expect("free");
    let stored = lock.full_key();
    let admin = cache.admin().expect("the store has admin operations");
    admin.force_release(&stored).unwrap();
    let another = Claim::new(Duration::from_secs(30))
        .with_fencing(false)
        .with_label("another owner");
    assert!(
        cache.claim(&stored, &another).unwrap().is_some(),
        "another owner takes the key"
    );
    assert!(guard.extend().unwrap_err().is_lost());
    assert!(guard.release().unwrap_err().is_lost());
    let (value, _) = admin.holder(&stored).unwrap().expect("still held");
    assert_eq!(
        value,
        another.owner_value().as_str(),
        "the other owner's value is kept"
    );
    assert!(cache.release(&stored, another.token(), None).unwrap());
}

/// Renewal keeps an unfenced lock held for several TTLs.
fn unfenced_lock_is_renewed<C: LockStore + Clone + 'static>(cache: C, key: &str) {
    let lock = Lock::new(key)
        .cache(cache.clone())
        .ttl(Duration::from_millis(600))
        .fencing(false);
    let guard = lock.try_acquire().expect("free");
    std::thread::sleep(Duration::from_millis(2_000));
    assert!(!guard.is_lost(), "renewed");
    assert!(lock.try_acquire().unwrap_err().is_locked(), "still held");
    guard.release().expect("still the owner");
}

#[test]
fn memory_unfenced_lock_has_fence_zero_and_excludes() {
    unfenced_lock_excludes(MemoryCache::new(), "unfenced");
}

#[test]
fn memory_unfenced_release_is_owner_checked() {
    unfenced_release_is_owner_checked(MemoryCache::new(), "unfenced-owner");
}

#[test]
fn memory_unfenced_lock_is_renewed() {
    unfenced_lock_is_renewed(MemoryCache::new(), "unfenced-renew");
}

#[tokio::test]
async fn memory_unfenced_async_lock_has_fence_zero_and_excludes() {
    let cache = MemoryCache::new();
    let lock = Lock::new("unfenced-async")
        .cache(cache.clone())
        .fencing(false);
    let guard = lock.try_acquire_async().await.expect("free");
    assert_eq!(guard.fence(), 0);
    assert!(lock.try_acquire_async().await.unwrap_err().is_locked());
    guard.release().await.expect("the owner releases");
    assert!(lock.try_acquire_async().await.is_ok());
}

/// A cache with only get/set/delete: `CacheStore` claims it unfenced (fence 0).
#[derive(Default)]
struct PlainCache(Mutex<BTreeMap<String, String>>);

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

#[test]
fn a_get_set_delete_cache_takes_unfenced_locks_through_the_default() {
    let cache = CacheStore::new(PlainCache::default());
    unfenced_lock_excludes(cache.clone(), "plain-unfenced");
    unfenced_release_is_owner_checked(cache.clone(), "plain-unfenced-owner");

    // A foreign value written straight into the cache: the unfenced owner can neither extend
    // nor release the key, and keeps its hands off the value.
    let lock = Lock::new("plain-unfenced-foreign")
        .cache(cache.clone())
        .ttl(Duration::from_secs(30))
        .renew(false)
        .fencing(false);
    let guard = lock.try_acquire().expect("free");
    assert_eq!(guard.fence(), 0);
    let stored = lock.full_key();
    cache
        .set(&stored, "another owner", Some(Duration::from_secs(30)))
        .unwrap();
    assert!(guard.extend().unwrap_err().is_lost());
    assert!(guard.release().unwrap_err().is_lost());
    assert_eq!(
        cache.get(&stored).unwrap().as_deref(),
        Some("another owner"),
        "the other owner's value is kept"
    );
}

/// Counts the claims of each kind, forwarding to a memory cache.
#[derive(Clone, Default)]
struct ClaimKinds {
    inner: MemoryCache,
    counts: std::sync::Arc<Mutex<(usize, usize)>>,
}

impl ClaimKinds {
    /// (fenced claims, unfenced claims) so far.
    fn counts(&self) -> (usize, usize) {
        *self.counts.lock().unwrap()
    }

    /// Counts `claim` as fenced or unfenced.
    fn count(&self, claim: &Claim<'_>) {
        let mut counts = self.counts.lock().unwrap();
        if claim.fencing() {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
}

impl LockStore for ClaimKinds {
    fn claim(&self, key: &str, claim: &Claim<'_>) -> CacheResult<Option<Claimed>> {
        self.count(claim);
        self.inner.claim(key, claim)
    }
    fn claim_async<'a>(
        &'a self,
        key: &'a str,
        claim: &'a Claim<'a>,
    ) -> BoxFuture<'a, CacheResult<Option<Claimed>>> {
        self.count(claim);
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
}

#[once(key = "plain-once-<id>", cache = cache)]
fn plain_once(cache: &ClaimKinds, id: u32) -> Option<u32> {
    Some(id)
}

#[once(key = "fenced-once-<id>", cache = cache, fence = f)]
fn fenced_once(cache: &ClaimKinds, id: u32) -> Option<u64> {
    let _ = id;
    Some(f)
}

#[once(key = "plain-once-async", cache = cache)]
async fn plain_once_async(cache: &ClaimKinds) -> Option<()> {
    tokio::task::yield_now().await;
    Some(())
}

#[test]
fn memory_once_without_fence_claims_unfenced_and_with_fence_claims_fenced() {
    let cache = ClaimKinds::default();
    assert_eq!(plain_once(&cache, 1), Some(1));
    assert_eq!(cache.counts(), (0, 1), "without `fence`: an unfenced claim");
    let a = fenced_once(&cache, 1).expect("runs");
    let b = fenced_once(&cache, 1).expect("runs");
    assert_eq!(cache.counts(), (2, 1), "with `fence`: a fenced claim");
    assert!(a >= 1 && b > a, "{a} then {b}");
}

#[tokio::test]
async fn memory_async_once_without_fence_claims_unfenced() {
    let cache = ClaimKinds::default();
    assert_eq!(plain_once_async(&cache).await, Some(()));
    assert_eq!(cache.counts(), (0, 1));
}

#[cfg(feature = "redis")]
mod redis_server {
    use super::commands::{admin, command_calls, delta};
    use super::*;
    use cachelock::redis::{RedisCache, RedisClusterCache};
    use cachelock_testkit::{RedisCluster, RedisServer};

    /// Every command an unfenced acquire + release makes the server run: `SET` (sent),
    /// `EVALSHA` (sent), and inside the release script `GET`, `DEL`, `PUBLISH`. No `TIME`,
    /// no second `SET`: the fence counter is not read or written.
    fn set_and_evalsha() -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("set".to_owned(), 1),
            ("evalsha".to_owned(), 1),
            ("get".to_owned(), 1),
            ("del".to_owned(), 1),
            ("publish".to_owned(), 1),
        ])
    }

    fn db_size(admin: &mut redis::Connection) -> u64 {
        redis::cmd("DBSIZE").query(admin).expect("DBSIZE")
    }

    #[test]
    fn redis_unfenced_acquire_and_release_send_set_and_evalsha_only() {
        let server = RedisServer::start();
        let mut admin = admin(&server);
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let lock = Lock::new("unfenced-count")
            .cache(cache.clone())
            .ttl(Duration::from_secs(10))
            .fencing(false);
        // Warm up: opens the pooled connection and loads the release script.
        lock.try_acquire().unwrap().release().unwrap();

        let before = command_calls(&mut admin);
        let guard = lock.try_acquire().expect("free");
        assert_eq!(guard.fence(), 0);
        guard.release().expect("released");
        let delta = delta(&before, &command_calls(&mut admin));

        assert_eq!(delta, set_and_evalsha());
        assert_eq!(db_size(&mut admin), 0, "no fence counter, no lock left");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_unfenced_async_acquire_and_release_send_set_and_evalsha_only() {
        let server = RedisServer::start();
        let mut admin = admin(&server);
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let lock = Lock::new("unfenced-count-async")
            .cache(cache.clone())
            .ttl(Duration::from_secs(10))
            .fencing(false);
        let warm = lock.try_acquire_async().await.unwrap();
        warm.release().await.unwrap();

        let before = command_calls(&mut admin);
        let guard = lock.try_acquire_async().await.expect("free");
        assert_eq!(guard.fence(), 0);
        assert!(lock.try_acquire_async().await.unwrap_err().is_locked());
        guard.release().await.expect("released");
        let delta = delta(&before, &command_calls(&mut admin));

        // The refused second claim went through the same handle, which holds the key: refused
        // without a command (`cachelock::redis`, "Claims inside one process").
        assert_eq!(delta, set_and_evalsha());
        assert_eq!(db_size(&mut admin), 0, "no fence counter, no lock left");
    }

    #[test]
    fn redis_unfenced_lock_has_fence_zero_and_excludes() {
        let server = RedisServer::start();
        unfenced_lock_excludes(
            RedisCache::from_url(&server.url()).expect("valid url"),
            "unfenced",
        );
    }

    #[test]
    fn redis_unfenced_release_is_owner_checked() {
        let server = RedisServer::start();
        unfenced_release_is_owner_checked(
            RedisCache::from_url(&server.url()).expect("valid url"),
            "unfenced-owner",
        );
    }

    #[test]
    fn redis_unfenced_lock_is_renewed() {
        let server = RedisServer::start();
        unfenced_lock_is_renewed(
            RedisCache::from_url(&server.url()).expect("valid url"),
            "unfenced-renew",
        );
    }

    #[test]
    fn redis_unfenced_claim_leaves_the_fence_counter_alone() {
        let server = RedisServer::start();
        let mut admin = admin(&server);
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let fenced = Lock::new("counter").cache(cache.clone());
        let first = fenced.try_acquire().unwrap();
        let last = first.fence();
        first.release().unwrap();
        let mut counter = || -> String {
            redis::cmd("GET")
                .arg("cachelock-fence")
                .query(&mut admin)
                .expect("GET counter")
        };
        let before = counter();
        assert_eq!(before, last.to_string());
        let unfenced = Lock::new("counter").cache(cache.clone()).fencing(false);
        for _ in 0..5 {
            unfenced.try_acquire().unwrap().release().unwrap();
        }
        assert_eq!(counter(), before, "unfenced claims never bump the counter");
        let next = fenced.try_acquire().unwrap();
        assert!(next.fence() > last);
    }

    #[once(key = "unfenced-once-<id>", cache = cache, ttl = "10s")]
    fn plain_job(cache: &RedisCache, id: u32) -> Option<u32> {
        Some(id)
    }

    #[once(key = "fenced-once", cache = cache, ttl = "10s", fence = f)]
    fn fenced_job(cache: &RedisCache) -> Option<u64> {
        Some(f)
    }

    #[once(key = "unfenced-once-async-<id>", cache = cache, ttl = "10s")]
    async fn plain_job_async(cache: &RedisCache, id: u32) -> Option<u32> {
        Some(id)
    }

    #[test]
    fn redis_once_without_fence_sends_set_and_evalsha() {
        let server = RedisServer::start();
        let mut admin = admin(&server);
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        assert_eq!(plain_job(&cache, 1), Some(1), "warm-up call runs");

        let before = command_calls(&mut admin);
        assert_eq!(plain_job(&cache, 2), Some(2), "the measured call runs");
        let delta = delta(&before, &command_calls(&mut admin));

        assert_eq!(delta, set_and_evalsha());
        assert_eq!(db_size(&mut admin), 0, "no fence counter, no lock left");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_async_once_without_fence_sends_set_and_evalsha() {
        let server = RedisServer::start();
        let mut admin = admin(&server);
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        assert_eq!(plain_job_async(&cache, 1).await, Some(1));

        let before = command_calls(&mut admin);
        assert_eq!(plain_job_async(&cache, 2).await, Some(2));
        let delta = delta(&before, &command_calls(&mut admin));

        assert_eq!(delta, set_and_evalsha());
    }

    #[test]
    fn redis_once_with_fence_gets_a_strictly_increasing_fence() {
        let server = RedisServer::start();
        let mut admin = admin(&server);
        let cache = RedisCache::from_url(&server.url()).expect("valid url");
        let mut fences = Vec::new();
        for _ in 0..5 {
            fences.push(fenced_job(&cache).expect("runs"));
        }
        assert!(fences[0] >= 1);
        for pair in fences.windows(2) {
            assert!(pair[0] < pair[1], "{fences:?}");
        }
        let before = command_calls(&mut admin);
        fenced_job(&cache).expect("runs");
        let delta = delta(&before, &command_calls(&mut admin));
        assert_eq!(delta.get("evalsha"), Some(&2), "claim script + release");
        assert_eq!(
            delta.get("time"),
            Some(&1),
            "the claim script bumped the fence"
        );
    }

    #[test]
    fn cluster_unfenced_lock_excludes() {
        let cluster = RedisCluster::start();
        let cache = RedisClusterCache::from_urls(cluster.urls()).expect("valid urls");
        for key in ["plain", "{tenant}:job"] {
            unfenced_lock_excludes(cache.clone(), key);
        }
    }
}
